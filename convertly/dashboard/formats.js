// What a dropped file probably is, to offer the targets and controls GET /api/formats lists
// for its kind. The guess uses the extensions and MIME types the server lists for each kind;
// the server decides from the content, this guess only fills the menus.

/** Preferred targets, in order, by family: the first one that is not the source's own. */
const PREFERRED = {
  image: ["webp", "jpg", "png"],
  vector: ["png", "pdf"],
  document: ["png", "jpg"],
  video: ["mp4", "webm"],
  audio: ["mp3", "m4a"],
  archive: ["zip", "7z"],
};

/** Families whose pixels a resize preset shapes. */
const RESIZABLE = new Set(["image", "vector", "video"]);

function extensionOf(name) {
  const base = name.slice(name.replace(/\\/g, "/").lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

/** The catalogue of GET /api/formats, indexed for the menus. */
export class Catalogue {
  constructor(body) {
    this.inputs = new Map(body.inputs.map((entry) => [entry.kind, entry]));
    this.outputs = body.outputs;
    this.presets = body.resizePresets;
    this.byExtension = new Map();
    this.byMime = new Map();
    for (const entry of body.inputs) {
      for (const extension of entry.extensions || []) this.byExtension.set(extension, entry.kind);
      for (const mime of entry.mimeTypes || [entry.mimeType]) this.byMime.set(mime, entry.kind);
    }
    // What re-packs or compresses a file as it is (an archive's non-entry targets).
    this.packing = new Set();
    for (const entry of body.inputs) {
      if (!entry.entryTargets) continue;
      for (const target of entry.targets) {
        if (!entry.entryTargets.includes(target)) this.packing.add(target);
      }
    }
  }

  /** The kind a file of this name (and browser-reported MIME type) probably is. */
  kindOf(name, mime = "") {
    return this.byExtension.get(extensionOf(name)) ||
      this.byMime.get(mime.toLowerCase()) || null;
  }

  /** Targets offered for a source kind (every output when the kind is unknown). For an
   * archive whose entry names are known, only the entry targets some entry can reach. */
  targets(kind, entryKinds = null) {
    const entry = this.inputs.get(kind);
    if (!entry) return this.outputs;
    if (!entry.entryTargets || entryKinds === null) return entry.targets;
    const reachable = new Set();
    for (const inner of entryKinds) {
      for (const target of this.inputs.get(inner)?.targets || []) reachable.add(target);
    }
    return entry.targets.filter((target) => !entry.entryTargets.includes(target) ||
      reachable.has(target));
  }

  family(kind) {
    return this.inputs.get(kind)?.family || null;
  }

  /** Whether a resize preset shapes this kind's output in `target`. */
  resizable(kind, target) {
    return RESIZABLE.has(this.family(kind)) && !this.packing.has(target);
  }

  /** Whether this kind's output in `target` is one page (a PDF drawn as an image). */
  paged(kind, target) {
    return this.family(kind) === "document" && target !== kind && !this.packing.has(target);
  }

  defaultTarget(kind, entryKinds = null) {
    const targets = this.targets(kind, entryKinds);
    const own = kind === "jpeg" ? "jpg" : kind;
    for (const candidate of PREFERRED[this.family(kind)] || []) {
      if (candidate !== own && targets.includes(candidate)) return candidate;
    }
    return targets.find((t) => t !== own) || targets[0];
  }
}

/** Presets that take a width or a height. */
export const NEEDS_WIDTH = new Set(["square", "width"]);
export const NEEDS_HEIGHT = new Set(["height"]);

export const PRESET_LABELS = {
  original: "Original size",
  website: "Website (fit 1920×1920)",
  email: "Email (600 wide)",
  instagram: "Instagram (1080×1080)",
  linkedin: "LinkedIn (1200×627)",
  ecommerce: "E-commerce (2000×2000, padded)",
  square: "Square (width × width)",
  width: "Width (keep aspect)",
  height: "Height (keep aspect)",
};
