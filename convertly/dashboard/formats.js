// What a dropped file probably is, to offer the targets GET /api/formats lists for it. The
// server decides from the content; this guess only fills the menus.

const BY_EXTENSION = {
  jpg: "jpeg", jpeg: "jpeg", jpe: "jpeg", jfif: "jpeg", png: "png", gif: "gif",
  webp: "webp", tif: "tiff", tiff: "tiff", bmp: "bmp", avif: "avif", heic: "heif",
  heif: "heif", svg: "svg", pdf: "pdf", zip: "zip", gz: "gzip", tgz: "gzip", bz2: "bzip2",
  xz: "xz", "7z": "7z", rar: "rar", tar: "tar", mp4: "mp4", m4v: "mp4", mov: "mov",
  webm: "webm", mp3: "mp3", wav: "wav", ogg: "ogg", oga: "ogg", opus: "ogg", flac: "flac",
  m4a: "m4a",
};

const BY_MIME = {
  "image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
  "image/tiff": "tiff", "image/bmp": "bmp", "image/avif": "avif", "image/heic": "heif",
  "image/heif": "heif", "image/svg+xml": "svg", "application/pdf": "pdf",
  "application/zip": "zip", "video/mp4": "mp4", "video/quicktime": "mov",
  "video/webm": "webm", "audio/mpeg": "mp3", "audio/wav": "wav", "audio/ogg": "ogg",
  "audio/flac": "flac", "audio/mp4": "m4a",
};

/** Preferred targets, in order, by family: the first one that is not the source's own. */
const PREFERRED = {
  image: ["webp", "jpg", "png"],
  vector: ["png", "pdf"],
  document: ["png", "jpg"],
  video: ["mp4", "webm"],
  audio: ["mp3", "m4a"],
  archive: ["zip", "7z"],
};

export function guessKind(file) {
  const dot = file.name.lastIndexOf(".");
  const extension = dot >= 0 ? file.name.slice(dot + 1).toLowerCase() : "";
  return BY_EXTENSION[extension] || BY_MIME[(file.type || "").toLowerCase()] || null;
}

/** The catalogue of GET /api/formats, indexed for the menus. */
export class Catalogue {
  constructor(body) {
    this.inputs = new Map(body.inputs.map((entry) => [entry.kind, entry]));
    this.outputs = body.outputs;
    this.presets = body.resizePresets;
  }

  /** Targets offered for a source kind (every output when the kind is unknown). */
  targets(kind) {
    return this.inputs.get(kind)?.targets || this.outputs;
  }

  family(kind) {
    return this.inputs.get(kind)?.family || null;
  }

  defaultTarget(kind) {
    const targets = this.targets(kind);
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
