// Talking to the API: every call sends `Authorization: Bearer <key>`; every failure becomes
// an ApiError carrying the server's own message (Convertly's {"error", "code", "detail"}).

const STORAGE_NAME = "convertly.apiKey";

export const NETWORK_MESSAGE =
  "Cannot reach the Convertly server. Check your connection, then try again.";

export function loadKey() {
  return sessionStorage.getItem(STORAGE_NAME) || localStorage.getItem(STORAGE_NAME);
}

/** Keep the key for this tab only, or on this device when `remember` is set. */
export function saveKey(key, remember) {
  clearKey();
  (remember ? localStorage : sessionStorage).setItem(STORAGE_NAME, key);
}

export function clearKey() {
  sessionStorage.removeItem(STORAGE_NAME);
  localStorage.removeItem(STORAGE_NAME);
}

export class ApiError extends Error {
  constructor(message, {status = 0, code = "", detail = {}} = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail || {};
  }

  get network() {
    return this.status === 0;
  }

  get unauthorized() {
    return this.status === 401;
  }
}

let unauthorizedHandler = () => {};

/** Called with the ApiError whenever a call made with the stored key answers 401. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

function errorFrom(status, statusText, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const message = body && typeof body.error === "string" && body.error
    ? body.error
    : `The server answered ${status}${statusText ? ` ${statusText}` : ""}.`;
  return new ApiError(message, {status, code: body?.code || "", detail: body?.detail});
}

function authHeaders(key) {
  return key ? {Authorization: `Bearer ${key}`} : {};
}

function report(error, key) {
  if (error.unauthorized && key && key === loadKey()) unauthorizedHandler(error);
  return error;
}

/**
 * Call the API and return its JSON answer. `json` is sent as a JSON body; `key` defaults to
 * the stored one (the sign-in form passes the key it is checking).
 */
export async function api(path, {method = "GET", json, body, key = loadKey(), signal} = {}) {
  const headers = authHeaders(key);
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, {method, headers, body, signal, cache: "no-store"});
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(NETWORK_MESSAGE);
  }
  const text = await response.text();
  if (!response.ok) throw report(errorFrom(response.status, response.statusText, text), key);
  return text ? JSON.parse(text) : null;
}

/**
 * POST a multipart form with XMLHttpRequest, whose upload events give progress:
 * `onProgress(sentBytes, totalBytes)`. Resolves with the JSON answer.
 */
export function upload(path, formData, {onProgress = () => {}, key = loadKey()} = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders(key))) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError("The server's answer was not JSON.", {status: xhr.status}));
        }
      } else {
        reject(report(errorFrom(xhr.status, xhr.statusText, xhr.responseText), key));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(NETWORK_MESSAGE)));
    xhr.addEventListener("abort", () => reject(new ApiError("The upload was cancelled.")));
    xhr.send(formData);
  });
}
