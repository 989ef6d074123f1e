// The convert page: pick or drop files, choose a target and a resize preset per file (or for
// all), submit them as one job (POST /api/jobs), follow the upload and the job, then preview
// and download each output, or all of them as one archive.

import {api, ApiError, upload} from "./api.js";
import {$, el, formatBytes, previewable} from "./dom.js";
import {entryNames, pdfPageCount} from "./archives.js";
import {Catalogue, NEEDS_HEIGHT, NEEDS_WIDTH, PRESET_LABELS} from "./formats.js";

const FINISHED = new Set(["completed", "failed"]);
// A file's state on the page. GET /api/jobs/{id} answers pending, completed or failed per
// file, with its progress: a pending file with progress is converting, one without is still
// in the queue.
const STATE_LABELS = {
  ready: "Ready",
  uploading: "Uploading…",
  queued: "Waiting for a worker…",
  processing: "Converting…",
  completed: "Done",
  failed: "Failed",
};
const BUSY_STATES = new Set(["uploading", "queued", "processing"]);

/** The page's state of one file from its result in the job. */
export function fileState(result) {
  if (FINISHED.has(result.status)) return result.status;
  return result.progress > 0 ? "processing" : "queued";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let nextId = 1;

export class ConvertView {
  constructor() {
    this.catalogue = null;
    this.items = [];
    this.busy = false;
    this.generation = 0; // bumped by reset(): a running poll loop stops
    this.form = $("convert-form");
    this.list = $("file-list");
    this.input = $("file-input");
    this.dropzone = $("dropzone");
    this.allFormat = $("all-format");
    this.allResize = $("all-resize");
    this.width = $("resize-width");
    this.height = $("resize-height");
    this.compression = $("compression");
    this.bind();
  }

  bind() {
    this.input.addEventListener("change", () => {
      this.addFiles(this.input.files);
      this.input.value = "";
    });
    for (const name of ["dragenter", "dragover"]) {
      this.dropzone.addEventListener(name, (event) => {
        event.preventDefault();
        this.dropzone.classList.add("dragging");
      });
    }
    for (const name of ["dragleave", "dragend"]) {
      this.dropzone.addEventListener(name, () => this.dropzone.classList.remove("dragging"));
    }
    this.dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.dropzone.classList.remove("dragging");
      if (event.dataTransfer?.files?.length) this.addFiles(event.dataTransfer.files);
    });
    // A file dropped next to the zone must not replace the page.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());

    this.compression.addEventListener("input", () => {
      $("compression-value").value = this.compression.value;
    });
    this.allFormat.addEventListener("change", () => {
      if (!this.allFormat.value) return;
      for (const item of this.editable()) item.format = this.allFormat.value;
      this.renderAll();
    });
    this.allResize.addEventListener("change", () => {
      for (const item of this.editable()) item.resize = this.allResize.value;
      this.renderAll();
    });
    $("clear-button").addEventListener("click", () => this.clear());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** Load the conversion catalogue (once) when the page is shown. */
  async open() {
    if (this.catalogue) return;
    $("convert-error").textContent = "";
    try {
      this.catalogue = new Catalogue(await api("/api/formats"));
    } catch (error) {
      $("convert-error").textContent =
        `Could not load the list of formats: ${error.message}`;
      return;
    }
    this.allResize.replaceChildren(...this.catalogue.presets.map(
      (preset) => el("option", {value: preset}, PRESET_LABELS[preset] || preset)));
    for (const item of this.items) this.classify(item);
    this.renderAll();
  }

  /** Guess the item's kind, list an archive's entries and count a PDF's pages, then pick a
   * default target (the menus follow once the file has been read). */
  async classify(item) {
    if (!this.catalogue || item.kind !== undefined) return;
    const catalogue = this.catalogue;
    item.kind = catalogue.kindOf(item.file.name, item.file.type);
    item.format = catalogue.defaultTarget(item.kind);
    if (catalogue.inputs.get(item.kind)?.entryTargets) {
      const names = await entryNames(item.file, item.kind);
      item.entries = names;
      item.entryKinds = names === null ? null
        : new Set(names.map((name) => catalogue.kindOf(name)).filter(Boolean));
      if (!catalogue.targets(item.kind, item.entryKinds).includes(item.format)) {
        item.format = catalogue.defaultTarget(item.kind, item.entryKinds);
      }
    } else if (catalogue.family(item.kind) === "document") {
      item.pageCount = await pdfPageCount(item.file);
    }
    if (this.items.includes(item)) this.renderAll();
  }

  targetsOf(item) {
    return this.catalogue.targets(item.kind, item.entryKinds ?? null);
  }

  /** Forget everything (sign-out). */
  reset() {
    this.generation += 1;
    this.busy = false;
    this.clear();
    $("progress").hidden = true;
  }

  ready() {
    return this.items.filter((item) => item.state === "ready");
  }

  finishedItems() {
    return this.items.filter((item) => FINISHED.has(item.state));
  }

  /** The files the shared options and the Convert button act on: the ready ones, or, when
   * none is, the finished ones (to convert them again with other options). */
  editable() {
    if (this.busy) return [];
    const ready = this.ready();
    return ready.length ? ready : this.finishedItems();
  }

  addFiles(fileList) {
    for (const file of fileList) {
      const item = {
        id: nextId++,
        file,
        kind: undefined, // guessed by classify() once the catalogue is loaded
        entries: null, // an archive's file names, when the browser could read them
        entryKinds: null,
        pageCount: null,
        page: 1,
        format: null,
        resize: this.allResize.value || "original",
        state: "ready",
        progress: 0,
        error: "",
        result: null,
        preview: previewable(file.type) ? URL.createObjectURL(file) : null,
      };
      this.items.push(item);
      this.classify(item);
    }
    $("convert-error").textContent = "";
    this.renderAll();
  }

  remove(item) {
    if (item.preview) URL.revokeObjectURL(item.preview);
    this.items = this.items.filter((other) => other !== item);
    this.renderAll();
    this.input.focus(); // the button that had the focus is gone
  }

  clear() {
    if (this.busy) return;
    for (const item of this.items) if (item.preview) URL.revokeObjectURL(item.preview);
    this.items = [];
    $("download-all").hidden = true;
    $("convert-error").textContent = "";
    this.renderAll();
  }

  // --- rendering ------------------------------------------------------------------------

  renderAll() {
    this.renderControls();
    this.list.replaceChildren(...this.items.map((item) => this.renderItem(item)));
  }

  /** Everything but the list (re-rendering the list would move the keyboard focus). */
  renderControls() {
    const ready = this.editable();
    const again = !this.busy && this.ready().length === 0 && ready.length > 0;
    $("empty-files").hidden = this.items.length > 0;
    $("all-options").disabled = !this.catalogue || ready.length === 0 || this.busy;
    $("clear-button").disabled = this.busy || this.items.length === 0;
    const button = $("convert-button");
    button.disabled = this.busy || ready.length === 0 || !this.catalogue;
    const count = ready.length > 1 ? ` ${ready.length} files` : "";
    button.textContent = again ? `Convert${count} again` : `Convert${count}`;

    // The shared menu offers what every ready file can become.
    if (this.catalogue) {
      const common = ready.length
        ? this.catalogue.outputs.filter((target) => ready.every(
          (item) => this.targetsOf(item).includes(target)))
        : [];
      const formats = new Set(ready.map((item) => item.format));
      const shared = formats.size === 1 ? [...formats][0] : "";
      this.allFormat.replaceChildren(
        el("option", {value: ""}, common.length || !ready.length ? "Per file"
          : "Per file (no common format)"),
        ...common.map((target) => el("option", {value: target}, target.toUpperCase())));
      this.allFormat.value = common.includes(shared) ? shared : "";
      const presets = new Set(ready.map((item) => item.resize));
      if (presets.size === 1) this.allResize.value = [...presets][0];
    }
    // Resize applies to what is drawn at a size (images, vectors, video); audio, archives
    // and PDF pages have no size to choose here.
    const sized = this.catalogue
      ? ready.filter((item) => this.catalogue.resizable(item.kind, item.format)) : [];
    $("resize-field").hidden = Boolean(this.catalogue) && ready.length > 0 && !sized.length;
    const resizes = sized.map((item) => item.resize);
    $("width-field").hidden = !resizes.some((r) => NEEDS_WIDTH.has(r));
    $("height-field").hidden = !resizes.some((r) => NEEDS_HEIGHT.has(r));
  }

  renderItem(item) {
    const locked = BUSY_STATES.has(item.state) || this.busy;
    const name = item.file.name;
    const kindLabel = (item.kind ? item.kind.toUpperCase() : "unrecognised type") +
      (item.pageCount ? ` · ${item.pageCount} page${item.pageCount > 1 ? "s" : ""}` : "") +
      (item.entries ? ` · holds ${describeEntries(item, this.catalogue)}` : "");
    const thumbLabel = () => el("span", {class: "thumb-label", "aria-hidden": "true"},
      (item.kind || "?").toUpperCase());
    // A file that only claims to be an image shows its label, not a broken picture.
    const fallback = (event) => event.target.replaceWith(thumbLabel());
    const thumb = item.result && item.result.downloadUrl && previewable(item.result.mimeType)
      ? el("img", {src: item.result.downloadUrl, alt: `Preview of ${item.result.outputFilename}`,
        loading: "lazy", onerror: fallback})
      : item.preview
        ? el("img", {src: item.preview, alt: `Preview of ${name}`, onerror: fallback})
        : thumbLabel();

    const options = el("div", {class: "file-options"});
    const sized = this.catalogue && this.catalogue.resizable(item.kind, item.format);
    const paged = this.catalogue && this.catalogue.paged(item.kind, item.format);
    if (this.catalogue && locked) {
      options.append(el("span", {class: "hint"}, [
        `To ${(item.format || "").toUpperCase()}`,
        sized ? ` · ${PRESET_LABELS[item.resize] || item.resize}` : "",
        paged ? ` · page ${item.page}` : ""].join("")));
    } else if (this.catalogue && item.kind !== undefined) {
      const formatId = `format-${item.id}`;
      const format = el("select", {id: formatId,
        onchange: (event) => { item.format = event.target.value; this.renderAll(); }},
      this.targetsOf(item).map((target) => el("option", {value: target},
        target.toUpperCase())));
      format.value = item.format;
      options.append(el("div", {class: "field"}, el("label", {for: formatId}, "Format",
        el("span", {class: "visually-hidden"}, ` of ${name}`)), format));
      if (sized) {
        const resizeId = `resize-${item.id}`;
        const resize = el("select", {id: resizeId,
          onchange: (event) => { item.resize = event.target.value; this.renderControls(); }},
        this.catalogue.presets.map((preset) => el("option", {value: preset},
          PRESET_LABELS[preset] || preset)));
        resize.value = item.resize;
        options.append(el("div", {class: "field"}, el("label", {for: resizeId}, "Resize",
          el("span", {class: "visually-hidden"}, ` of ${name}`)), resize));
      }
      if (paged) {
        const pageId = `page-${item.id}`;
        const page = el("input", {id: pageId, type: "number", min: 1, inputmode: "numeric",
          max: item.pageCount || false, value: item.page,
          onchange: (event) => {
            const wanted = Math.round(Number(event.target.value));
            const last = item.pageCount || Infinity;
            item.page = Number.isFinite(wanted) ? Math.min(Math.max(wanted, 1), last) : 1;
            event.target.value = item.page;
          }});
        options.append(el("div", {class: "field"}, el("label", {for: pageId}, "Page",
          el("span", {class: "visually-hidden"}, ` of ${name}`),
          item.pageCount ? el("span", {class: "hint"}, ` of ${item.pageCount}`) : null),
        page));
      }
    }

    const status = el("div", {class: "file-status"});
    const label = el("span", {class: `badge ${item.state}`}, item.state === "processing"
      ? `Converting… ${item.progress}%` : STATE_LABELS[item.state]);
    status.append(label);
    if (item.state === "processing") {
      status.append(el("progress", {max: 100, value: item.progress,
        "aria-label": `Progress of ${name}`}));
    }
    if (item.error) {
      status.append(el("p", {class: "error file-error", role: "alert"}, item.error));
    }
    if (item.result && item.state === "completed") {
      const result = item.result;
      const saved = result.originalSize && result.finalSize !== null
        ? Math.round(100 * (1 - result.finalSize / result.originalSize)) : null;
      status.append(el("p", {class: "result"},
        el("a", {class: "button small", href: result.downloadUrl,
          download: result.outputFilename || true},
        `Download ${result.outputFilename}`),
        " ",
        el("span", {class: "hint"}, [
          formatBytes(result.finalSize),
          result.width && result.height ? ` · ${result.width}×${result.height}` : "",
          saved !== null ? ` · ${saved >= 0 ? `${saved}% smaller` : `${-saved}% larger`}` : "",
        ].join(""))));
    }

    return el("li", {class: `file-item ${item.state}`, "data-file": name},
      el("div", {class: "thumb"}, thumb),
      el("div", {class: "file-main"},
        el("div", {class: "file-head"},
          el("span", {class: "file-name"}, name),
          el("span", {class: "hint"}, `${formatBytes(item.file.size)} · ${kindLabel}`),
          locked ? null : el("button", {type: "button", class: "button small secondary",
            "aria-label": `Remove ${name}`, onclick: () => this.remove(item)}, "Remove")),
        options,
        status));
  }

  // --- submitting and following the job -------------------------------------------------

  fields(batch) {
    const data = new FormData();
    const width = this.width.value ? Number(this.width.value) : null;
    const height = this.height.value ? Number(this.height.value) : null;
    data.append("jobType", "convert");
    data.append("formats", JSON.stringify(batch.map((item) => item.format)));
    const sized = (item) => this.catalogue.resizable(item.kind, item.format);
    data.append("resizes", JSON.stringify(
      batch.map((item) => (sized(item) ? item.resize : "original"))));
    if (batch.some((item) => this.catalogue.paged(item.kind, item.format))) {
      data.append("pages", JSON.stringify(batch.map(
        (item) => (this.catalogue.paged(item.kind, item.format) ? item.page : null))));
    }
    const wide = (item) => sized(item) && NEEDS_WIDTH.has(item.resize);
    const tall = (item) => sized(item) && NEEDS_HEIGHT.has(item.resize);
    if (width && batch.some(wide)) {
      data.append("resizeWidths", JSON.stringify(
        batch.map((item) => (wide(item) ? width : null))));
    }
    if (height && batch.some(tall)) {
      data.append("resizeHeights", JSON.stringify(
        batch.map((item) => (tall(item) ? height : null))));
    }
    data.append("compression", this.compression.value);
    const archive = $("create-archive").checked;
    data.append("createArchive", archive ? "true" : "false");
    if (archive) data.append("archiveFormat", $("archive-format").value);
    for (const item of batch) data.append("files", item.file, item.file.name);
    return data;
  }

  async submit() {
    const batch = this.editable();
    if (this.busy || batch.length === 0 || !this.catalogue) return;
    for (const item of batch) item.result = null;
    const generation = this.generation;
    this.busy = true;
    $("convert-error").textContent = "";
    $("download-all").hidden = true;
    for (const item of batch) {
      item.state = "uploading";
      item.error = "";
    }
    const uploadBar = $("upload-progress");
    const jobBar = $("job-progress");
    uploadBar.value = 0;
    jobBar.value = 0;
    $("progress").hidden = false;
    this.status(`Uploading ${batch.length} file${batch.length > 1 ? "s" : ""}…`);
    this.renderAll();

    let jobId;
    try {
      const created = await upload("/api/jobs", this.fields(batch), {
        onProgress: (sent, total) => {
          uploadBar.value = Math.round((100 * sent) / total);
          this.status(`Uploading… ${formatBytes(sent)} of ${formatBytes(total)}`);
        },
      });
      jobId = created.jobId;
    } catch (error) {
      if (generation !== this.generation) return;
      this.busy = false;
      for (const item of batch) item.state = "ready";
      this.showRequestError(error, batch);
      this.status("");
      $("progress").hidden = true;
      this.renderAll();
      return;
    }
    uploadBar.value = 100;
    for (const item of batch) {
      item.state = "queued";
      item.progress = 0;
    }
    this.status("Uploaded; waiting for the conversion to start…");
    this.renderAll();

    try {
      const job = await this.follow(jobId, batch, generation);
      if (job) this.finished(job);
    } catch (error) {
      if (generation !== this.generation) return;
      $("convert-error").textContent = error.message;
    } finally {
      if (generation === this.generation) {
        this.busy = false;
        this.renderAll();
      }
    }
  }

  /** A whole request refused: put the message next to the file it names, if any. */
  showRequestError(error, batch) {
    const detail = error instanceof ApiError ? error.detail : {};
    let target = null;
    if (Number.isInteger(detail.fileIndex) && batch[detail.fileIndex]) {
      target = batch[detail.fileIndex];
    } else if (detail.filename) {
      target = batch.find((item) => item.file.name === detail.filename) || null;
    }
    if (target) {
      target.error = error.message;
      $("convert-error").textContent = `Nothing was converted: ${target.file.name} needs ` +
        "attention (see its message). Fix or remove it, then convert again.";
    } else if (error.unauthorized) {
      $("convert-error").textContent = error.message;
    } else {
      $("convert-error").textContent = error.network
        ? error.message : `Nothing was converted: ${error.message}`;
    }
  }

  status(text) {
    $("job-status").textContent = text;
  }

  /** Poll the job until it ends; returns it (null when the view was reset meanwhile). */
  async follow(jobId, batch, generation) {
    let delay = 250;
    while (generation === this.generation) {
      let job;
      try {
        job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
      } catch (error) {
        if (generation !== this.generation || error.unauthorized) return null;
        // A rate limit (429) passes like an outage: wait and ask again.
        if (!error.network && error.status < 500 && error.status !== 429) throw error;
        this.status(`${error.message} Retrying…`);
        delay = Math.min(delay * 2, 5000);
        await sleep(delay);
        continue;
      }
      if (generation !== this.generation) return null;
      this.update(job, batch);
      if (FINISHED.has(job.status)) return job;
      await sleep(delay);
      delay = Math.min(delay * 1.5, 1500);
    }
    return null;
  }

  update(job, batch) {
    $("job-progress").value = job.progress || 0;
    for (const result of job.results) {
      const item = batch[result.index];
      if (!item) continue;
      item.state = fileState(result);
      item.progress = result.progress || 0;
      item.error = result.error || "";
      item.result = result.status === "completed" ? result : null;
    }
    const done = job.completedFiles + job.failedFiles;
    if (!FINISHED.has(job.status)) {
      this.status(`Converting: ${done} of ${job.totalFiles} file` +
        `${job.totalFiles > 1 ? "s" : ""} done.`);
    }
    this.renderAll();
  }

  finished(job) {
    $("job-progress").value = 100;
    const failed = job.failedFiles;
    const completed = job.completedFiles;
    if (job.status === "failed") {
      this.status(job.errorMessage || "The conversion failed.");
    } else {
      this.status(`Done: ${completed} converted${failed ? `, ${failed} failed` : ""}.`);
    }
    const archive = job.archive;
    const box = $("download-all");
    if (archive && archive.downloadUrl && completed > 0) {
      box.replaceChildren(el("a", {class: "button", href: archive.downloadUrl,
        download: archive.filename || true},
      `Download all (${archive.format}${archive.size ? `, ${formatBytes(archive.size)}` : ""})`));
      box.hidden = false;
    } else {
      box.hidden = true;
    }
  }
}

/** "3 files: 2 JPEG, 1 other" for an archive whose names were read. */
function describeEntries(item, catalogue) {
  const names = item.entries;
  if (!names.length) return "no files";
  const counts = new Map();
  for (const name of names) {
    const kind = catalogue?.kindOf(name) || "other";
    counts.set(kind, (counts.get(kind) || 0) + 1);
  }
  const parts = [...counts].map(([kind, n]) => `${n} ${kind === "other" ? "other" :
    kind.toUpperCase()}`);
  return `${names.length} file${names.length > 1 ? "s" : ""}: ${parts.join(", ")}`;
}
