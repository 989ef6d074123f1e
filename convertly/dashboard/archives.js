// The names of the files an archive holds, read in the browser from the archive's own
// headers (zip's central directory, tar headers, RAR 4 and RAR 5 file headers), so the page
// offers only the targets its entries can become. Only headers are read, never whole
// files. Anything else (7z, whose headers are usually compressed, tar.gz, encrypted headers,
// a damaged archive) answers null: the contents are unknown, and the server decides.

const MAX_ENTRIES = 5000;
const MAX_DIRECTORY = 16 * 1024 * 1024; // bytes of a zip's central directory we read
const utf8 = new TextDecoder("utf-8");

async function bytes(file, start, end) {
  return new Uint8Array(await file.slice(start, Math.min(end, file.size)).arrayBuffer());
}

function startsWith(data, signature) {
  return signature.every((byte, i) => data[i] === byte);
}

function text(data) {
  const end = data.indexOf(0);
  return utf8.decode(end >= 0 ? data.subarray(0, end) : data);
}

async function zipNames(file) {
  const tail = await bytes(file, Math.max(0, file.size - 65_557), file.size);
  const view = new DataView(tail.buffer);
  for (let at = tail.length - 22; at >= 0; at -= 1) {
    if (view.getUint32(at, true) !== 0x06054b50) continue;
    const size = view.getUint32(at + 12, true);
    const offset = view.getUint32(at + 16, true);
    if (offset === 0xffffffff || size > MAX_DIRECTORY) return null; // zip64: not read here
    const directory = await bytes(file, offset, offset + size);
    const dir = new DataView(directory.buffer);
    const names = [];
    let pos = 0;
    while (pos + 46 <= directory.length && dir.getUint32(pos, true) === 0x02014b50) {
      const nameLength = dir.getUint16(pos + 28, true);
      const skip = dir.getUint16(pos + 30, true) + dir.getUint16(pos + 32, true);
      names.push(utf8.decode(directory.subarray(pos + 46, pos + 46 + nameLength)));
      pos += 46 + nameLength + skip;
      if (names.length > MAX_ENTRIES) return null;
    }
    return names.filter((name) => !name.endsWith("/"));
  }
  return null;
}

async function tarNames(file) {
  const names = [];
  let longName = null; // from a PAX (`x`) or GNU (`L`) header, for the entry after it
  let pos = 0;
  while (pos + 512 <= file.size) {
    const header = await bytes(file, pos, pos + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = parseInt(text(header.subarray(124, 136)).trim() || "0", 8);
    if (Number.isNaN(size)) return null;
    const type = String.fromCharCode(header[156]);
    if ((type === "x" || type === "L") && size <= 1024 * 1024) {
      const data = utf8.decode(await bytes(file, pos + 512, pos + 512 + size));
      longName = type === "L" ? data.replace(/\0.*$/s, "")
        : (/(?:^|\n)\d+ path=([^\n]*)\n/.exec(data)?.[1] ?? longName);
    } else if (type === "0" || type === "\0" || type === "7") {
      const prefix = text(header.subarray(345, 500));
      const name = text(header.subarray(0, 100));
      names.push(longName ?? (prefix ? `${prefix}/${name}` : name));
      longName = null;
    } else if (type !== "g") {
      longName = null;
    }
    pos += 512 + Math.ceil(size / 512) * 512;
    if (names.length > MAX_ENTRIES) return null;
  }
  return names;
}

/** RAR 5 variable-length integers: 7 bits a byte, low bits first. */
function vint(data, state) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && state.at < data.length; i += 1) {
    const byte = data[state.at];
    state.at += 1;
    value += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return value;
    scale *= 128;
  }
  throw new Error("truncated");
}

async function rar5Names(file) {
  const names = [];
  let pos = 8;
  while (pos < file.size && names.length <= MAX_ENTRIES) {
    const start = await bytes(file, pos, pos + 16);
    const head = {at: 4};
    const size = vint(start, head);
    const block = await bytes(file, pos, pos + head.at + size);
    const state = {at: head.at};
    const type = vint(block, state);
    const flags = vint(block, state);
    if (flags & 1) vint(block, state);
    const dataSize = flags & 2 ? vint(block, state) : 0;
    if (type === 4) return null; // archive encryption header: names are encrypted
    if (type === 5) break; // end of archive
    if (type === 2) {
      const fileFlags = vint(block, state);
      vint(block, state); // unpacked size
      vint(block, state); // attributes
      if (fileFlags & 2) state.at += 4;
      if (fileFlags & 4) state.at += 4;
      vint(block, state); // compression
      vint(block, state); // host OS
      const length = vint(block, state);
      const name = utf8.decode(block.subarray(state.at, state.at + length));
      if (!(fileFlags & 1)) names.push(name);
    }
    pos += head.at + size + dataSize;
  }
  return names;
}

async function rar4Names(file) {
  const names = [];
  let pos = 7;
  while (pos + 7 <= file.size && names.length <= MAX_ENTRIES) {
    const head = await bytes(file, pos, pos + 7);
    const view = new DataView(head.buffer);
    const type = head[2];
    const flags = view.getUint16(3, true);
    const size = view.getUint16(5, true);
    if (size < 7) return null;
    const block = await bytes(file, pos, pos + size);
    const data = new DataView(block.buffer);
    let extra = flags & 0x8000 && size >= 11 ? data.getUint32(7, true) : 0;
    if (type === 0x73 && flags & 0x80) return null; // headers encrypted
    if (type === 0x7b) break; // end of archive
    if (type === 0x74) {
      const nameLength = data.getUint16(26, true);
      let at = 32;
      if (flags & 0x100) {
        extra += data.getUint32(32, true) * 2 ** 32;
        at = 40;
      }
      const name = text(block.subarray(at, at + nameLength)); // the ASCII part
      if ((flags & 0xe0) !== 0xe0) names.push(name.replaceAll("\\", "/"));
    }
    pos += size + extra;
  }
  return names;
}

/** The names of the files in `file` (an archive of `kind`), or null when unknown. */
export async function entryNames(file, kind) {
  try {
    const head = await bytes(file, 0, 8);
    if (kind === "zip") return await zipNames(file);
    if (kind === "tar") return await tarNames(file);
    if (kind === "rar" && startsWith(head, [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07, 0x01, 0x00])) {
      return await rar5Names(file);
    }
    if (kind === "rar" && startsWith(head, [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07, 0x00])) {
      return await rar4Names(file);
    }
    if (["gzip", "bzip2", "xz"].includes(kind)) {
      // One compressed file, named like its archive without the last extension; a tarball
      // (.tar.gz, .tgz) holds files we cannot list without decompressing it.
      const name = file.name.replace(/\.[^.]*$/, "");
      return /\.tar$/i.test(name) || /\.t[gbx]z2?$/i.test(file.name) ? null : [name];
    }
  } catch {
    return null; // damaged or cut short: the server will say what it is
  }
  return null;
}

/** How many pages a PDF says it has (its page tree's /Count), or null when unknown. */
export async function pdfPageCount(file) {
  if (file.size > 32 * 1024 * 1024) return null;
  const body = new TextDecoder("latin1").decode(await file.arrayBuffer());
  let count = null;
  for (const match of body.matchAll(/<<((?:(?!<<|>>)[\s\S])*?\/Type\s*\/Pages\b[\s\S]*?)>>/g)) {
    const found = /\/Count\s+(\d+)/.exec(match[1]);
    if (found) count = Math.max(count || 0, Number(found[1]));
  }
  return count;
}
