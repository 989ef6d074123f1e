// The dashboard's entry point: sign-in, sign-out and the pages (#convert, #tools, #jobs,
// #storage, #streams).

import {api, clearKey, loadKey, onUnauthorized, saveKey} from "./api.js";
import {ConvertView} from "./convert.js";
import {$} from "./dom.js";
import {JobsView} from "./jobs.js";
import {StorageView} from "./storage.js";
import {StreamsView} from "./streams.js";
import {ToolsView} from "./tools.js";

const VIEWS = ["signin", "convert", "tools", "jobs", "storage", "streams"];
const TITLES = {signin: "Sign in", convert: "Convert", tools: "Tools", jobs: "Jobs",
                storage: "Storage", streams: "Streams"};
const PAGES = ["storage", "jobs", "tools", "streams"]; // besides convert, the default

const convert = new ConvertView();
const jobsView = new JobsView();
const storage = new StorageView();
const streams = new StreamsView();
const toolsView = new ToolsView();

function notice(message) {
  const box = $("notice");
  box.textContent = message;
  box.hidden = !message;
}

function show(name, {focus = false} = {}) {
  for (const view of VIEWS) $(`${view}-view`).hidden = view !== name;
  const signedIn = name !== "signin";
  $("nav").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · Convertly`;
  if (name === "convert") convert.open();
  if (name === "storage") storage.open();
  if (name === "jobs") jobsView.open();
  if (name === "streams") streams.open();
  else streams.stop();
  if (name === "tools") toolsView.open();
  if (name === "signin") $("api-key").focus();
  else if (focus) $(`${name}-title`).focus();
}

function route({focus = false} = {}) {
  if (!loadKey()) {
    show("signin");
    return;
  }
  const wanted = location.hash.slice(1);
  show(PAGES.includes(wanted) ? wanted : "convert", {focus});
}

function signOut(message = "") {
  clearKey();
  convert.reset();
  jobsView.reset();
  storage.reset();
  streams.reset();
  toolsView.reset();
  if (location.hash) history.replaceState(null, "", location.pathname);
  $("signin-error").textContent = message;
  show("signin");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("api-key");
  const error = $("signin-error");
  const button = event.target.querySelector("button[type=submit]");
  const key = input.value.trim();
  error.textContent = "";
  notice("");
  if (!key) {
    error.textContent = "Enter your API key.";
    input.focus();
    return;
  }
  if (!key.startsWith("cvly_")) {
    error.textContent = "That is not an API key: keys start with cvly_.";
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    await api("/api/jobs?limit=1", {key}); // any authenticated call checks the key
  } catch (failure) {
    error.textContent = failure.unauthorized
      ? "This API key was not accepted. Check that it is complete and not revoked " +
        "(convertly keys list), or create a new one."
      : failure.message;
    input.focus();
    return;
  } finally {
    button.disabled = false;
  }
  saveKey(key, $("remember").checked);
  input.value = "";
  if (!PAGES.includes(location.hash.slice(1))) {
    history.replaceState(null, "", "#convert");
  }
  route({focus: true});
});

$("sign-out").addEventListener("click", () => signOut());

onUnauthorized(() => {
  signOut("Your API key is no longer accepted (it may have been revoked). Sign in again.");
});

window.addEventListener("hashchange", () => route({focus: true}));
// Another tab signed out (localStorage is shared between tabs).
window.addEventListener("storage", () => {
  if (!loadKey() && $("signin-view").hidden) signOut();
});

for (const view of VIEWS) $(`${view}-title`)?.setAttribute("tabindex", "-1");
route();
