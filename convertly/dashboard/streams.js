// The streams page: this key's video streams (GET /api/video/streams), newest first, and a
// player for a ready one. HLS plays through hls.js (vendored in vendor/hls/, served by this
// server: no request leaves it), or natively where the browser plays HLS itself (Safari).
// The player reports its events the way the SDK's player does (POST
// /api/video/playback-events), so the stream's plays and watch time count it.

import {api} from "./api.js";
import {$, el, formatDate} from "./dom.js";
import Hls from "./vendor/hls/hls.min.mjs";

const PAGE_SIZE = 10;
const STATUS_LABELS = {queued: "Queued", processing: "Encoding", ready: "Ready",
  failed: "Failed"};
const PROGRESS_EVERY_MS = 15000;

function sessionId() {
  return crypto.randomUUID ? crypto.randomUUID()
    : `dash_${Date.now().toString(36)}_${Math.random().toString(36).slice(2)}`;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  const whole = Math.round(value);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

export class StreamsView {
  constructor() {
    this.offset = 0;
    this.loading = null;
    this.hls = null;
    this.playing = null;
    $("streams-refresh").addEventListener("click", () => this.load());
    $("streams-prev").addEventListener("click", () => {
      this.offset = Math.max(0, this.offset - PAGE_SIZE);
      this.load();
    });
    $("streams-next").addEventListener("click", () => {
      this.offset += PAGE_SIZE;
      this.load();
    });
    $("stream-quality").addEventListener("change", (event) => this.chooseLevel(
      Number(event.target.value)));
    $("stream-close").addEventListener("click", () => this.stop());
    this.bindAnalytics($("stream-player"));
  }

  open() {
    this.load();
  }

  reset() {
    this.stop();
    this.offset = 0;
    this.loading = null;
    $("stream-list").replaceChildren();
    $("streams-page-info").textContent = "";
  }

  async load() {
    const token = Symbol("load");
    this.loading = token;
    $("streams-error").textContent = "";
    $("streams-status").textContent = "Loading…";
    let answer;
    try {
      answer = await api(`/api/video/streams?${new URLSearchParams({limit: PAGE_SIZE,
        offset: this.offset})}`);
    } catch (error) {
      if (this.loading !== token) return;
      $("streams-status").textContent = "";
      $("streams-error").textContent = error.message;
      return;
    }
    if (this.loading !== token) return;
    const {streams, pagination} = answer;
    $("stream-list").replaceChildren(...streams.map((stream) => this.card(stream)));
    const first = pagination.total ? this.offset + 1 : 0;
    $("streams-page-info").textContent = pagination.total
      ? `${first}–${this.offset + streams.length} of ${pagination.total}` : "";
    $("streams-prev").disabled = this.offset === 0;
    $("streams-next").disabled = !pagination.hasMore;
    $("streams-status").textContent = pagination.total ? ""
      : "No video streams yet. Create one with POST /api/video/streams.";
  }

  card(stream) {
    const heights = stream.renditions.map((r) => `${r.height}p`).join(" · ");
    const counts = stream.analytics
      ? `${stream.analytics.plays} play${stream.analytics.plays === 1 ? "" : "s"}` : "";
    const title = stream.title || stream.id;
    return el("li", {class: "job-card", "data-stream-id": stream.id},
      el("div", {class: "job-head"},
        el("span", {class: `badge ${stream.status}`}, STATUS_LABELS[stream.status] ||
          stream.status),
        el("span", {class: "job-when"}, title),
        el("span", {class: "hint"}, [formatDate(stream.createdAt), seconds(stream.duration),
          heights, counts].filter(Boolean).join(" · ")),
        stream.status === "ready" || stream.status === "failed" ? null
          : el("span", {class: "hint"}, `${stream.progress}%`)),
      stream.error ? el("p", {class: "error"}, stream.error) : null,
      stream.status === "ready" && stream.hlsManifestUrl
        ? el("p", {class: "actions"}, el("button", {class: "button small", type: "button",
          "aria-label": `Play ${title}`, onclick: () => this.play(stream)}, "Play"))
        : null);
  }

  play(stream) {
    this.stop();
    const video = $("stream-player");
    this.playing = {stream, session: sessionId(), lastProgress: 0};
    $("player-title").textContent = stream.title || stream.id;
    $("player-panel").hidden = false;
    video.poster = stream.posterUrl || "";
    for (const caption of stream.captions || []) {
      // With hls.js the manifest's subtitle group carries the captions; natively, tracks.
      if (Hls.isSupported() || !caption.url) continue;
      video.append(el("track", {kind: caption.kind || "subtitles", label: caption.label,
        srclang: caption.language, src: caption.url}));
    }
    if (stream.chaptersUrl) {
      video.append(el("track", {kind: "chapters", label: "Chapters", src: stream.chaptersUrl,
        default: true}));
    }
    $("stream-chapters").replaceChildren(...(stream.chapters || []).map((chapter) =>
      el("li", {}, el("button", {class: "linklike", type: "button",
        onclick: () => { video.currentTime = chapter.start; }},
      `${seconds(chapter.start)} ${chapter.title}`))));
    const select = $("stream-quality");
    select.replaceChildren(el("option", {value: "-1"}, "Auto"));
    if (Hls.isSupported()) {
      // No worker: the page's policy runs scripts from this server only, never a blob.
      const hls = new Hls({enableWorker: false});
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        select.append(...hls.levels.map((level, index) =>
          el("option", {value: String(index)}, `${level.height}p`)));
        this.showLevel();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, () => this.showLevel());
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) $("player-status").textContent = `Playback failed: ${data.details}`;
      });
      hls.loadSource(stream.hlsManifestUrl);
      hls.attachMedia(video);
    } else {
      video.src = stream.hlsManifestUrl;
    }
  }

  chooseLevel(index) {
    if (this.hls) this.hls.currentLevel = index;
  }

  showLevel() {
    const hls = this.hls;
    if (!hls || hls.currentLevel < 0) return;
    const level = hls.levels[hls.currentLevel];
    $("player-status").textContent = level ? `Playing ${level.height}p` : "";
    $("player-status").dataset.level = String(hls.currentLevel);
  }

  stop() {
    const video = $("stream-player");
    if (this.hls) this.hls.destroy();
    this.hls = null;
    this.playing = null;
    video.pause();
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.replaceChildren();
    video.load();
    $("player-panel").hidden = true;
    $("player-status").textContent = "";
    delete $("player-status").dataset.level;
  }

  bindAnalytics(video) {
    const send = (event) => {
      const playing = this.playing;
      if (!playing) return;
      const body = {playbackId: playing.stream.playbackId, sessionId: playing.session, event};
      if (Number.isFinite(video.currentTime)) body.currentTime = video.currentTime;
      if (Number.isFinite(video.duration)) body.duration = video.duration;
      fetch("/api/video/playback-events", {method: "POST", keepalive: true,
        headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
        .catch(() => {});
    };
    video.addEventListener("loadedmetadata", () => send("ready"));
    for (const name of ["play", "pause", "ended", "seeked"]) {
      video.addEventListener(name, () => send(name));
    }
    video.addEventListener("timeupdate", () => {
      if (!this.playing || Date.now() - this.playing.lastProgress < PROGRESS_EVERY_MS) return;
      this.playing.lastProgress = Date.now();
      send("timeupdate");
    });
  }
}
