// The jobs page: this key's jobs, newest first (GET /api/jobs), a page at a time, each with
// its status, when it was created, its files and links to download their outputs again.

import {api} from "./api.js";
import {$, el, formatBytes, formatDate} from "./dom.js";

const PAGE_SIZE = 10;
const JOB_LABELS = {
  pending: "Queued",
  processing: "Converting",
  completed: "Done",
  failed: "Failed",
};
const FILE_LABELS = {pending: "Not done yet", completed: "Done", failed: "Failed"};

export class JobsView {
  constructor() {
    this.offset = 0;
    this.loading = null;
    $("jobs-refresh").addEventListener("click", () => this.load());
    $("jobs-prev").addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE_SIZE);
      this.load();
    });
    $("jobs-next").addEventListener("click", () => {
      this.offset += PAGE_SIZE;
      this.load();
    });
  }

  open() {
    this.load();
  }

  reset() {
    this.offset = 0;
    this.loading = null;
    $("job-list").replaceChildren();
    $("jobs-page-info").textContent = "";
  }

  async load() {
    const token = Symbol("load");
    this.loading = token;
    $("jobs-error").textContent = "";
    $("jobs-status").textContent = "Loading…";
    let answer;
    try {
      answer = await api(`/api/jobs?${new URLSearchParams({limit: PAGE_SIZE,
        offset: this.offset})}`);
    } catch (error) {
      if (this.loading !== token) return;
      $("jobs-status").textContent = "";
      $("jobs-error").textContent = error.message;
      return;
    }
    if (this.loading !== token) return;
    const {jobs, pagination} = answer;
    if (!jobs.length && this.offset > 0 && pagination.total > 0) {
      this.offset = Math.floor((pagination.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      this.load();
      return;
    }
    $("job-list").replaceChildren(...jobs.map((job) => this.card(job)));
    const first = pagination.total ? this.offset + 1 : 0;
    const last = this.offset + jobs.length;
    $("jobs-page-info").textContent = pagination.total
      ? `${first}–${last} of ${pagination.total}` : "";
    $("jobs-prev").disabled = this.offset === 0;
    $("jobs-next").disabled = !pagination.hasMore;
    $("jobs-status").textContent = pagination.total ? ""
      : "No jobs yet. Conversions started on the Convert page appear here.";
  }

  card(job) {
    const files = job.results.map((result) => {
      const parts = [el("span", {class: "file-name"}, result.filename),
        el("span", {class: `badge ${result.status}`}, FILE_LABELS[result.status] ||
          result.status)];
      if (result.status === "completed" && result.downloadUrl) {
        parts.push(el("a", {class: "button small secondary", href: result.downloadUrl,
          download: result.outputFilename || true},
        `Download ${result.outputFilename}`),
        el("span", {class: "hint"}, formatBytes(result.finalSize)));
      } else if (result.error) {
        parts.push(el("span", {class: "error"}, result.error));
      }
      return el("li", {class: "job-file"}, ...parts);
    });
    const archive = job.archive;
    const counts = [`${job.totalFiles} file${job.totalFiles === 1 ? "" : "s"}`];
    if (job.completedFiles) counts.push(`${job.completedFiles} done`);
    if (job.failedFiles) counts.push(`${job.failedFiles} failed`);
    return el("li", {class: "job-card", "data-job-id": job.jobId},
      el("div", {class: "job-head"},
        el("span", {class: `badge ${job.status}`}, JOB_LABELS[job.status] || job.status),
        el("span", {class: "job-when"}, el("time", {datetime: job.createdAt || ""},
          formatDate(job.createdAt))),
        el("span", {class: "hint"}, `${job.jobType} · ${counts.join(", ")}`),
        job.status === "processing" || job.status === "pending"
          ? el("span", {class: "hint"}, `${job.progress}%`) : null),
      job.errorMessage ? el("p", {class: "error"}, job.errorMessage) : null,
      el("ul", {class: "job-files", "aria-label": `Files of the job of ${
        formatDate(job.createdAt)}`}, ...files),
      archive && archive.downloadUrl
        ? el("p", {class: "actions"}, el("a", {class: "button small", href: archive.downloadUrl,
          download: archive.filename || true},
        `Download all (${archive.format}${archive.size ? `, ${formatBytes(archive.size)}` : ""})`))
        : null);
  }
}
