// The storage browser: folders, file cards with thumbnails, search, paging, rename, delete,
// upload and zip downloads, over /api/files, /api/folders, /api/files/search and
// /api/files/zip.

import {api, upload} from "./api.js";
import {$, el, formatBytes, formatDate, previewable, startDownload} from "./dom.js";

const PAGE_SIZE = 24;

export class StorageView {
  constructor() {
    this.path = []; // [{id, name}] from the top level down to the open folder
    this.query = "";
    this.offset = 0;
    this.total = 0;
    this.files = [];
    this.selected = new Set();
    this.loading = null;
    this.bind();
  }

  get folder() {
    return this.path.length ? this.path[this.path.length - 1] : null;
  }

  bind() {
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.query = $("search").value.trim();
      this.offset = 0;
      this.load();
    });
    $("search").addEventListener("search", () => { // the field's own clear button
      if (!$("search").value && this.query) {
        this.query = "";
        this.offset = 0;
        this.load();
      }
    });
    $("prev-page").addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE_SIZE);
      this.load();
    });
    $("next-page").addEventListener("click", () => {
      this.offset += PAGE_SIZE;
      this.load();
    });
    $("select-all").addEventListener("change", (event) => {
      for (const file of this.files) {
        if (event.target.checked) this.selected.add(file.id);
        else this.selected.delete(file.id);
      }
      this.renderFiles();
    });
    $("zip-selected").addEventListener("click", () => this.zipSelected());
    $("delete-selected").addEventListener("click", () => this.deleteSelected());
    $("new-folder").addEventListener("click", () => this.newFolder());
    $("rename-folder").addEventListener("click", () => this.renameFolder());
    $("delete-folder").addEventListener("click", () => this.deleteFolder());
    $("storage-upload").addEventListener("change", (event) => {
      const files = [...event.target.files];
      event.target.value = "";
      if (files.length) this.uploadFiles(files);
    });
  }

  open() {
    this.load();
  }

  reset() {
    this.path = [];
    this.query = "";
    this.offset = 0;
    this.files = [];
    this.selected.clear();
    $("search").value = "";
    $("storage-files").replaceChildren();
    $("folder-list").replaceChildren();
  }

  message(text) {
    $("storage-status").textContent = text;
  }

  fail(error) {
    $("storage-error").textContent = error.message;
  }

  // --- loading --------------------------------------------------------------------------

  async load() {
    const token = Symbol("load");
    this.loading = token;
    $("storage-error").textContent = "";
    this.message("Loading…");
    const params = new URLSearchParams({limit: PAGE_SIZE, offset: this.offset});
    let filesAnswer;
    let folders = [];
    try {
      if (this.query) {
        params.set("q", this.query);
        filesAnswer = await api(`/api/files/search?${params}`);
      } else {
        const parent = this.folder ? this.folder.id : "null";
        params.set("folderId", parent);
        [filesAnswer, {folders}] = await Promise.all([
          api(`/api/files?${params}`),
          api(`/api/folders?${new URLSearchParams({parentId: parent})}`),
        ]);
      }
    } catch (error) {
      if (this.loading !== token) return;
      this.message("");
      this.fail(error);
      return;
    }
    if (this.loading !== token) return;
    this.files = filesAnswer.files;
    this.total = filesAnswer.pagination.total;
    if (this.files.length === 0 && this.offset > 0 && this.total > 0) {
      // The last page emptied (deleted files): show the one before.
      this.offset = Math.max(0, Math.floor((this.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      this.load();
      return;
    }
    const onPage = new Set(this.files.map((file) => file.id));
    for (const id of [...this.selected]) if (!onPage.has(id)) this.selected.delete(id);
    this.renderBreadcrumbs();
    this.renderFolders(this.query ? [] : folders);
    this.renderFiles();
    this.renderPager();
    this.message(this.summary(folders));
  }

  summary(folders) {
    if (this.query) {
      return this.total ? `${this.total} file${this.total > 1 ? "s" : ""} match ` +
        `“${this.query}”.` : `No file matches “${this.query}”.`;
    }
    if (!this.total && !folders.length) {
      return this.folder ? "This folder is empty." : "Nothing stored yet. Converted files " +
        "and uploads appear here.";
    }
    return "";
  }

  // --- rendering ------------------------------------------------------------------------

  renderBreadcrumbs() {
    const crumbs = [el("button", {type: "button", class: "crumb",
      onclick: () => this.goTo(0)}, "All files")];
    this.path.forEach((folder, index) => {
      crumbs.push(el("span", {class: "sep", "aria-hidden": "true"}, "/"));
      const last = index === this.path.length - 1 && !this.query;
      crumbs.push(el("button", {type: "button", class: "crumb",
        "aria-current": last ? "location" : false, onclick: () => this.goTo(index + 1)},
      folder.name));
    });
    if (this.query) {
      crumbs.push(el("span", {class: "sep", "aria-hidden": "true"}, "/"),
        el("span", {"aria-current": "location"}, `Search: “${this.query}”`),
        el("button", {type: "button", class: "button small secondary",
          onclick: () => this.clearSearch()}, "Clear search"));
    }
    $("breadcrumbs").replaceChildren(...crumbs);
    $("folder-actions").hidden = !this.folder || Boolean(this.query);
  }

  renderFolders(folders) {
    $("folder-list").replaceChildren(...folders.map((folder) => el("li", {},
      el("button", {type: "button", class: "folder",
        onclick: () => this.enter(folder)},
      el("span", {class: "folder-icon", "aria-hidden": "true"}),
      el("span", {class: "folder-name"}, folder.name)))));
  }

  renderFiles() {
    $("storage-files").replaceChildren(...this.files.map((file) => this.card(file)));
    const count = this.selected.size;
    $("zip-selected").disabled = count === 0;
    $("delete-selected").disabled = count === 0;
    $("zip-selected").textContent = count ? `Download ${count} selected (zip)`
      : "Download selected (zip)";
    $("delete-selected").textContent = count ? `Delete ${count} selected` : "Delete selected";
    const all = $("select-all");
    all.checked = this.files.length > 0 && this.files.every((f) => this.selected.has(f.id));
    all.disabled = this.files.length === 0;
  }

  renderPager() {
    const first = this.total ? this.offset + 1 : 0;
    const last = this.offset + this.files.length;
    $("page-info").textContent = this.total ? `${first}–${last} of ${this.total}` : "";
    $("prev-page").disabled = this.offset === 0;
    $("next-page").disabled = last >= this.total;
  }

  card(file) {
    const checkId = `select-${file.id}`;
    const dot = file.filename.lastIndexOf(".");
    const extension = dot > 0 ? file.filename.slice(dot + 1).toUpperCase() : "FILE";
    const label = () => el("span", {class: "thumb-label", "aria-hidden": "true"}, extension);
    const thumb = previewable(file.mime_type)
      ? el("img", {src: file.download_url, alt: "", loading: "lazy",
        onerror: (event) => event.target.replaceWith(label())})
      : label();
    const card = el("li", {class: "file-card", "data-file-id": file.id});
    const name = el("span", {class: "file-name"}, file.filename);
    const error = el("p", {class: "error", role: "alert"});
    const actions = el("div", {class: "card-actions"},
      el("a", {class: "button small", href: file.download_url, download: file.filename},
        "Download", el("span", {class: "visually-hidden"}, ` ${file.filename}`)),
      el("button", {type: "button", class: "button small secondary",
        onclick: () => this.startRename(file, card, name, actions, error)},
      "Rename", el("span", {class: "visually-hidden"}, ` ${file.filename}`)),
      el("button", {type: "button", class: "button small danger",
        onclick: () => this.deleteFile(file, error)},
      "Delete", el("span", {class: "visually-hidden"}, ` ${file.filename}`)));
    const dimensions = file.width && file.height ? ` · ${file.width}×${file.height}` : "";
    card.append(
      el("div", {class: "thumb"}, thumb),
      el("div", {class: "card-body"},
        el("label", {class: "check", for: checkId},
          el("input", {type: "checkbox", id: checkId, checked: this.selected.has(file.id),
            onchange: (event) => {
              if (event.target.checked) this.selected.add(file.id);
              else this.selected.delete(file.id);
              this.renderFiles();
              $(checkId)?.focus();
            }}),
          el("span", {class: "visually-hidden"}, `Select ${file.filename}`)),
        name,
        el("span", {class: "hint"},
          `${formatBytes(file.size_bytes)}${dimensions} · ${formatDate(file.created_at)}`),
        actions,
        error));
    return card;
  }

  // --- navigation -----------------------------------------------------------------------

  enter(folder) {
    this.path.push({id: folder.id, name: folder.name});
    this.offset = 0;
    this.selected.clear();
    this.load();
  }

  goTo(depth) {
    this.path = this.path.slice(0, depth);
    this.clearSearch(false);
    this.offset = 0;
    this.selected.clear();
    this.load();
  }

  clearSearch(reload = true) {
    this.query = "";
    $("search").value = "";
    if (reload) {
      this.offset = 0;
      this.load();
    }
  }

  // --- changes --------------------------------------------------------------------------

  startRename(file, card, name, actions, error) {
    const inputId = `rename-${file.id}`;
    const input = el("input", {id: inputId, type: "text", value: file.filename,
      maxlength: 255, required: true});
    const cancel = () => {
      form.replaceWith(name);
      actions.hidden = false;
      error.textContent = "";
      actions.querySelector("button")?.focus();
    };
    const form = el("form", {class: "rename", onsubmit: async (event) => {
      event.preventDefault();
      const filename = input.value.trim();
      if (!filename) {
        error.textContent = "Enter a name.";
        return;
      }
      try {
        const {file: updated} = await api(`/api/files/${encodeURIComponent(file.id)}`,
          {method: "PATCH", json: {filename}});
        Object.assign(file, updated);
        this.message(`Renamed to “${updated.filename}”.`);
        card.replaceWith(this.card(file));
      } catch (failure) {
        error.textContent = failure.message;
      }
    }},
    el("label", {for: inputId, class: "visually-hidden"}, `New name for ${file.filename}`),
    input,
    el("button", {type: "submit", class: "button small"}, "Save"),
    el("button", {type: "button", class: "button small secondary", onclick: cancel},
      "Cancel"));
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") cancel();
    });
    name.replaceWith(form);
    actions.hidden = true;
    input.focus();
    input.setSelectionRange(0, dotIndex(file.filename));
  }

  async deleteFile(file, error) {
    if (!window.confirm(`Delete “${file.filename}”? This cannot be undone.`)) return;
    try {
      await api(`/api/files/${encodeURIComponent(file.id)}`, {method: "DELETE"});
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    this.selected.delete(file.id);
    await this.load();
    this.message(`Deleted “${file.filename}”.`);
  }

  async deleteSelected() {
    const ids = [...this.selected];
    if (!ids.length) return;
    if (!window.confirm(`Delete ${ids.length} file${ids.length > 1 ? "s" : ""}? ` +
      "This cannot be undone.")) return;
    let deleted = 0;
    for (const id of ids) {
      try {
        await api(`/api/files/${encodeURIComponent(id)}`, {method: "DELETE"});
        deleted += 1;
        this.selected.delete(id);
      } catch (error) {
        this.fail(error);
        break;
      }
    }
    await this.load();
    this.message(`Deleted ${deleted} file${deleted === 1 ? "" : "s"}.`);
  }

  async zipSelected() {
    const ids = [...this.selected];
    if (!ids.length) return;
    this.message(`Preparing a zip of ${ids.length} file${ids.length > 1 ? "s" : ""}…`);
    try {
      const {zip} = await api("/api/files/zip", {method: "POST", json: {ids}});
      startDownload(zip.download_url, zip.filename);
      this.message(`Downloading ${zip.filename} (${zip.fileCount} files, ` +
        `${formatBytes(zip.size_bytes)}).`);
    } catch (error) {
      this.message("");
      this.fail(error);
    }
  }

  async uploadFiles(files) {
    const data = new FormData();
    if (this.folder) data.append("folderId", this.folder.id);
    for (const file of files) data.append("files", file, file.name);
    $("storage-error").textContent = "";
    try {
      await upload("/api/files", data, {onProgress: (sent, total) => {
        this.message(`Uploading… ${Math.round((100 * sent) / total)}%`);
      }});
    } catch (error) {
      this.message("");
      this.fail(error);
      return;
    }
    await this.load();
    this.message(`Uploaded ${files.length} file${files.length > 1 ? "s" : ""}.`);
  }

  async newFolder() {
    const name = window.prompt("Name of the new folder:");
    if (!name || !name.trim()) return;
    try {
      await api("/api/folders", {method: "POST",
        json: {name: name.trim(), parentId: this.folder ? this.folder.id : null}});
    } catch (error) {
      this.fail(error);
      return;
    }
    await this.load();
    this.message(`Created folder “${name.trim()}”.`);
  }

  async renameFolder() {
    const folder = this.folder;
    if (!folder) return;
    const name = window.prompt("New name of the folder:", folder.name);
    if (!name || !name.trim() || name.trim() === folder.name) return;
    try {
      const {folder: updated} = await api(`/api/folders/${encodeURIComponent(folder.id)}`,
        {method: "PATCH", json: {name: name.trim()}});
      folder.name = updated.name;
    } catch (error) {
      this.fail(error);
      return;
    }
    this.renderBreadcrumbs();
    this.message(`Renamed the folder to “${folder.name}”.`);
  }

  async deleteFolder() {
    const folder = this.folder;
    if (!folder) return;
    if (!window.confirm(`Delete the folder “${folder.name}” and everything in it? ` +
      "This cannot be undone.")) return;
    try {
      await api(`/api/folders/${encodeURIComponent(folder.id)}?recursive=true`,
        {method: "DELETE"});
    } catch (error) {
      this.fail(error);
      return;
    }
    this.path.pop();
    this.offset = 0;
    await this.load();
    this.message(`Deleted the folder “${folder.name}”.`);
  }
}

function dotIndex(filename) {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? dot : filename.length;
}
