// The tools page: pick a media tool, set its options, send one file to POST /api/media/{tool}
// and preview what comes back (the output and the facts the tool reports). The tools and
// their options are read from /openapi.json, which the server builds from each tool's
// declared parameters: a tool added on the server shows up here with its options.

import {api, upload} from "./api.js";
import {$, el, formatBytes, previewable} from "./dom.js";

const PREFIX = "/api/media/";
// Fields every tool route takes: the page sends the file itself and runs tools at once. A
// tool's own fields and their kinds are the operation's `x-params` (a tool's `background`
// colour is one of them).
const REQUEST_FIELDS = new Set([
  "file", "files", "sourceUrl", "async", "background", "saveToStorage", "callbackUrl",
  "callbackSecret",
]);

/** Every tool in an OpenAPI document: [{name, summary, takes, params: [{name, kind,
 *  schema}]}]. */
export function toolsFrom(spec) {
  const tools = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    const operation = item.post;
    const schema = operation?.requestBody?.content?.["multipart/form-data"]?.schema;
    if (!path.startsWith(PREFIX) || !schema?.properties?.file) continue;
    const kinds = operation["x-params"] || {};
    const params = Object.entries(schema.properties)
      .filter(([name]) => name in kinds || !REQUEST_FIELDS.has(name))
      .map(([name, field]) => ({name, kind: kinds[name] || "", schema: field}));
    tools.push({name: path.slice(PREFIX.length), summary: operation.summary || "",
                takes: operation.description || "", params});
  }
  return tools.sort((a, b) => a.name.localeCompare(b.name));
}

/** The text shown in an empty control: the default, or the range. */
function placeholder(schema, kind) {
  if (schema.default !== undefined) return `default ${schema.default}`;
  const range = schema.anyOf?.[0] || schema;
  if (range.minimum !== undefined && range.maximum !== undefined) {
    return `${range.minimum}–${range.maximum}`;
  }
  return kind === "colour" ? "#rrggbb" : "";
}

function control(param, id) {
  const {schema, kind} = param;
  if (kind === "file") return el("input", {id, type: "file", "data-param": param.name});
  if (schema.enum) {
    const label = schema.default !== undefined ? `Default (${schema.default})` : "—";
    return el("select", {id, "data-param": param.name},
      el("option", {value: ""}, label),
      schema.enum.map((value) => el("option", {value}, value)));
  }
  const numeric = schema.type === "number" || schema.type === "integer";
  return el("input", {
    id, "data-param": param.name, type: numeric ? "number" : "text",
    min: numeric ? schema.minimum : undefined, max: numeric ? schema.maximum : undefined,
    step: schema.type === "number" ? "any" : undefined,
    inputmode: numeric ? "decimal" : undefined,
    placeholder: placeholder(schema, kind), autocomplete: "off", spellcheck: "false",
  });
}

export class ToolsView {
  constructor() {
    this.tools = null;
    this.busy = false;
    this.form = $("tools-form");
    this.select = $("tool-name");
    this.options = $("tool-options");
    this.file = $("tool-file");
    this.result = $("tool-result");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.select.addEventListener("change", () => this.showTool());
  }

  async open() {
    if (this.tools) return;
    $("tool-error").textContent = "";
    try {
      this.tools = toolsFrom(await api("/openapi.json", {key: null}));
    } catch (failure) {
      $("tool-error").textContent = failure.message;
      return;
    }
    this.select.replaceChildren(...this.tools.map((tool) =>
      el("option", {value: tool.name}, tool.name)));
    this.showTool();
  }

  reset() {
    this.form.reset();
    this.result.replaceChildren();
    this.result.hidden = true;
    $("tool-status").textContent = "";
    $("tool-error").textContent = "";
    if (this.tools) this.showTool();
  }

  current() {
    return this.tools?.find((tool) => tool.name === this.select.value);
  }

  showTool() {
    const tool = this.current();
    if (!tool) return;
    $("tool-summary").textContent = `${tool.summary} ${tool.takes}`.trim();
    const fields = tool.params.map((param) => {
      const id = `tool-param-${param.name}`;
      return el("div", {class: "field"},
        el("label", {for: id}, param.name),
        control(param, id),
        el("span", {class: "hint"}, param.schema.description || ""));
    });
    this.options.replaceChildren(el("legend", {}, "Options"), ...fields);
    this.options.hidden = fields.length === 0;
  }

  async run() {
    const tool = this.current();
    const status = $("tool-status");
    const error = $("tool-error");
    error.textContent = "";
    if (!tool || this.busy) return;
    const [source] = this.file.files;
    if (!source) {
      error.textContent = "Choose a file for the tool to work on.";
      this.file.focus();
      return;
    }
    const form = new FormData();
    form.append("file", source, source.name);
    for (const input of this.options.querySelectorAll("[data-param]")) {
      if (input.type === "file") {
        if (input.files.length) form.append(input.dataset.param, input.files[0]);
      } else if (input.value.trim()) {
        form.append(input.dataset.param, input.value.trim());
      }
    }
    this.busy = true;
    $("tool-run").disabled = true;
    this.result.hidden = true;
    status.textContent = `Uploading ${source.name}…`;
    try {
      const answer = await upload(`${PREFIX}${tool.name}`, form, {
        onProgress: (sent, total) => {
          status.textContent = sent < total
            ? `Uploading ${source.name}… ${Math.round((100 * sent) / total)} %`
            : `Running ${tool.name}…`;
        },
      });
      status.textContent = `${tool.name} is done.`;
      this.show(answer);
    } catch (failure) {
      status.textContent = "";
      error.textContent = failure.message;
    } finally {
      this.busy = false;
      $("tool-run").disabled = false;
    }
  }

  show(answer) {
    const parts = [];
    const [output] = answer.files || [];
    if (output) {
      const name = output.outputFilename || output.filename || "output";
      if (previewable(output.mimeType)) {
        parts.push(el("img", {class: "tool-preview", src: output.downloadUrl,
                              alt: `Preview of ${name}`}));
      }
      parts.push(el("p", {},
        el("a", {class: "button", href: output.downloadUrl, download: name},
          `Download ${name}`),
        " ",
        el("span", {class: "hint"}, [output.mimeType, formatBytes(output.finalSize)]
          .filter(Boolean).join(", "))));
    }
    const facts = Object.entries(answer)
      .filter(([key]) => key !== "tool" && key !== "files");
    if (facts.length) {
      parts.push(el("dl", {class: "tool-facts"}, facts.flatMap(([key, value]) => [
        el("dt", {}, key),
        el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)),
      ])));
    }
    this.result.replaceChildren(el("h2", {}, "Result"), ...parts);
    this.result.hidden = false;
  }
}
