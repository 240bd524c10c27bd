/* wsdev console: a REPL for one WebSocket endpoint of the program wsdev serves.
 *
 * The page talks to /_wsdev/ws?path=…&query=…; the server runs the program exactly as for a
 * plain client of path?query and wraps what it does in JSON envelopes (hello, stdout, stderr,
 * stalled, exit, restart, error); binary frames are the program's stdout in --binary mode. A
 * stdout or stderr envelope holds one line (data) or the lines of one read of the pipe (lines).
 * Everything shown comes from the network or the user, so it only ever reaches the page as
 * text (textContent), never as markup.
 */
"use strict";

(() => {
  const root = document.documentElement;

  // ------------------------------------------------------------------ storage and theme
  // localStorage can be missing or throw (private windows, disabled storage): the console
  // then simply forgets between reloads.
  const store = {
    get(key) {
      try { return window.localStorage.getItem(key); } catch { return null; }
    },
    set(key, value) {
      try { window.localStorage.setItem(key, value); } catch { /* not persisted */ }
    },
    remove(key) {
      try { window.localStorage.removeItem(key); } catch { /* not persisted */ }
    },
  };

  const THEME_KEY = "wsdev.theme";
  const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");
  const systemTheme = () => (darkQuery.matches ? "dark" : "light");
  function applyTheme() {
    const chosen = store.get(THEME_KEY);
    root.dataset.theme = chosen === "light" || chosen === "dark" ? chosen : systemTheme();
  }
  function toggleTheme() {
    const next = root.dataset.theme === "dark" ? "light" : "dark";
    // Choosing what the system already prefers means "follow the system" again.
    if (next === systemTheme()) store.remove(THEME_KEY);
    else store.set(THEME_KEY, next);
    applyTheme();
  }
  // Runs in <head>, before the first paint, so the page never flashes the wrong theme.
  applyTheme();
  darkQuery.addEventListener("change", applyTheme);

  // ------------------------------------------------------------------ settings
  function readSettings() {
    let given = {};
    try { given = JSON.parse(root.dataset.wsdev || "{}") || {}; } catch { given = {}; }
    const str = (value, fallback) => (typeof value === "string" ? value : fallback);
    return {
      path: str(given.path, "/") || "/",
      query: str(given.query, ""),
      socket: str(given.socket, "/_wsdev/ws"),
      command: str(given.command, ""),
      version: str(given.version, ""),
      binary: given.binary === true,
      dirMode: given.dirMode === true,
      room: roomOf(given.room),
    };
  }
  function roomOf(room) {
    // Under --lan: the room's LAN origin, its join secret and the QR code of its link (B14).
    if (!room || typeof room !== "object") return null;
    const fields = ["origin", "join", "link", "qr"];
    if (!fields.every((name) => typeof room[name] === "string")) return null;
    if (!/^https?:\/\//.test(room.origin) || !room.qr.startsWith("data:image/svg+xml")) return null;
    return room;
  }
  const SETTINGS = readSettings();
  const WS_SCHEME = window.location.protocol === "https:" ? "wss" : "ws";
  const AT_PREFIX = window.location.pathname.startsWith("/_wsdev/");

  const MAX_ENTRIES = 5000;
  const JOURNAL_MAX_LINES = 1000000;
  const JOURNAL_MAX_CHARS = 128 * 2 ** 20;
  const TEXT_LIMIT = 20000;
  const HEX_LIMIT = 4096;
  const TREE_LIMIT = 100000;
  const HISTORY_KEY = "wsdev.history";
  const HISTORY_MAX = 200;
  const RETRY_FIRST_MS = 250;
  const RETRY_MAX_MS = 5000;
  const RESTART_DELAY_MS = 30;

  const CLOSE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1006: "connection dropped",
    1008: "policy violation",
    1009: "message too big",
    1011: "program failed",
    1012: "service restart",
  };

  // ------------------------------------------------------------------ small helpers
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const pad = (n, width) => String(n).padStart(width, "0");
  function clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
  }
  function duration(ms) {
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
    return `${Math.floor(ms / 60000)} m ${Math.round((ms % 60000) / 1000)} s`;
  }
  // 12,345: counts are whole numbers, grouped here rather than by toLocaleString, whose first
  // call loads the browser's number formatting (tens of milliseconds, in the middle of a flood
  // when the "earlier lines not shown" marker first appears).
  const grouped = (n) => (Number.isInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ",") : String(n));
  const plural = (n, word) => `${grouped(n)} ${word}${n === 1 ? "" : "s"}`;
  function hexOf(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i++) out += (i ? " " : "") + pad(bytes[i].toString(16), 2);
    return out;
  }
  function parseHex(text) {
    const digits = text.replace(/0x/gi, "").replace(/[\s,:]/g, "");
    if (digits.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(digits)) return null;
    const bytes = new Uint8Array(digits.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.substr(i * 2, 2), 16);
    return bytes;
  }
  function endpointUrl(target) {
    return `${WS_SCHEME}://${window.location.host}${target.path}${target.query ? `?${target.query}` : ""}`;
  }
  function socketUrl(target) {
    const name = storedName();
    return `${WS_SCHEME}://${window.location.host}${SETTINGS.socket}` +
      `?path=${encodeURIComponent(target.path)}&query=${encodeURIComponent(target.query)}` +
      (name ? `&name=${encodeURIComponent(name)}` : "");
  }

  // ------------------------------------------------------------------ your name (behaviour C9)
  // In a room, a person gives a name so whoever runs wsdev can tell who is who. It is kept in
  // this browser and goes with every connection as the envelope's own parameter: wsdev keeps it,
  // and the program sees it only when wsdev runs with --names. wsdev cleans it the same way.
  const NAME_KEY = "wsdev.name";
  const NAME_MAX = 32;
  function cleanName(text) {
    const printable = String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
    return Array.from(printable).slice(0, NAME_MAX).join("").trim();
  }
  const storedName = () => cleanName(store.get(NAME_KEY) || "");
  function setUpName(field, changed) {
    field.value = storedName();
    const commit = () => {
      const name = cleanName(field.value);
      field.value = name;
      if (name === storedName()) return;
      if (name) store.set(NAME_KEY, name);
      else store.remove(NAME_KEY);
      changed(name);
    };
    field.addEventListener("change", commit);
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); commit(); }
    });
  }
  function normalizeTarget(path, query) {
    let p = path.trim() || "/";
    if (!p.startsWith("/")) p = `/${p}`;
    return { path: p, query: query.trim().replace(/^\?/, "") };
  }
  function targetLabel(target) {
    return target.path + (target.query ? `?${target.query}` : "");
  }

  // ------------------------------------------------------------------ JSON rendering
  // Numbers are shown exactly as the program wrote them (1.0, 12345678901234567890), where
  // the browser lets a reviver see the source text.
  const rawNumbers = typeof JSON.rawJSON === "function";
  function reviveNumber(_key, value, context) {
    if (rawNumbers && typeof value === "number" && context && typeof context.source === "string" &&
        String(value) !== context.source) {
      return JSON.rawJSON(context.source);
    }
    return value;
  }
  const isRaw = (value) => rawNumbers && JSON.isRawJSON(value);

  function parseJson(text) {
    const first = text.trimStart()[0];
    if (first !== "{" && first !== "[") return undefined;
    try { return JSON.parse(text, reviveNumber); } catch { return undefined; }
  }

  function span(cls, text) { return el("span", cls, text); }

  function primitive(value) {
    if (isRaw(value)) return span("n", value.rawJSON);
    if (typeof value === "string") return span("s", JSON.stringify(value));
    if (typeof value === "number") return span("n", String(value));
    return span("l", String(value));
  }

  function isContainer(value) {
    return value !== null && typeof value === "object" && !isRaw(value);
  }

  // Small objects and arrays of plain values read best on one line, as in a code editor.
  const INLINE_WIDTH = 64;
  function isSmallFlat(value, keys) {
    if (keys.length > 8) return false;
    for (const k of keys) {
      const child = value[k];
      if (isContainer(child) && Object.keys(child).length) return false;
    }
    return JSON.stringify(value).length <= INLINE_WIDTH;
  }

  function preview(value, room) {
    const text = JSON.stringify(value);
    const inner = text.slice(1, -1);
    return inner.length > room ? `${inner.slice(0, room)}…` : inner;
  }

  function jsonNode(key, value, last, depth) {
    const comma = last ? "" : ",";
    const head = [];
    if (key !== undefined) head.push(span("k", JSON.stringify(key)), span("p", ": "));
    if (isContainer(value)) {
      const isArray = Array.isArray(value);
      const keys = Object.keys(value);
      const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
      if (keys.length === 0) {
        const line = el("div", "jline");
        line.append(...head, span("p", open + close + comma));
        return line;
      }
      if (depth > 0 && isSmallFlat(value, keys)) {
        const line = el("div", "jline");
        line.append(...head, span("p", open));
        keys.forEach((k, i) => {
          if (!isArray) line.append(span("k", JSON.stringify(k)), span("p", ": "));
          line.append(isContainer(value[k]) ? span("p", JSON.stringify(value[k])) : primitive(value[k]));
          if (i < keys.length - 1) line.append(span("p", ", "));
        });
        line.append(span("p", close + comma));
        return line;
      }
      const node = el("details");
      node.open = depth === 0 || (depth < 4 && keys.length <= 25);
      const summary = el("summary");
      const fold = depth === 0
        ? ` ${preview(value, 90)} `
        : ` ${plural(keys.length, isArray ? "item" : "key")} `;
      summary.append(...head, span("p", open), span("jfold", fold + close + comma));
      const body = el("div", "jbody");
      keys.forEach((k, i) => {
        body.append(jsonNode(isArray ? undefined : k, value[k], i === keys.length - 1, depth + 1));
      });
      const end = el("div", "jend");
      end.append(span("p", close + comma));
      node.append(summary, body, end);
      return node;
    }
    const line = el("div", "jline");
    line.append(...head, primitive(value), span("p", comma));
    return line;
  }

  function renderJson(value, text, into) {
    const box = el("div", "json");
    if (text.length > TREE_LIMIT) {
      // A tree of a huge reply would stall the page; fold it as one pretty-printed block.
      const node = el("details");
      const summary = el("summary");
      summary.append(span("p", Array.isArray(value) ? "[" : "{"),
        span("jfold", ` ${plural(text.length, "character")} `));
      node.append(summary, el("div", "jline", JSON.stringify(value, null, 2)));
      box.append(node);
    } else {
      box.append(jsonNode(undefined, value, true, 0));
    }
    into.append(box);
  }

  // ------------------------------------------------------------------ hex dump
  function renderHex(bytes, into) {
    const head = el("div", "bin-head");
    head.append("binary · ", el("b", "", plural(bytes.length, "byte")));
    into.append(head);
    if (!bytes.length) return;
    const pre = el("pre", "hex");
    const shown = Math.min(bytes.length, HEX_LIMIT);
    // A narrow window gets 8 bytes a row, so the ASCII column is never cut off.
    const perRow = ui.transcript && ui.transcript.clientWidth < 640 ? 8 : 16;
    for (let off = 0; off < shown; off += perRow) {
      const row = bytes.subarray(off, Math.min(off + perRow, shown));
      let hex = "";
      let ascii = "";
      for (let i = 0; i < perRow; i++) {
        hex += i < row.length ? `${pad(row[i].toString(16), 2)} ` : "   ";
        if (i === 7 && perRow > 8) hex += " ";
        if (i < row.length) ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
      }
      pre.append(span("off", `${pad(off.toString(16), perRow > 8 ? 8 : 4)} `), hex, span("asc", `|${ascii}|`));
      if (off + perRow < shown) pre.append("\n");
    }
    if (shown < bytes.length) pre.append("\n", span("off", `… ${plural(bytes.length - shown, "more byte")}`));
    into.append(pre);
  }

  // ------------------------------------------------------------------ transcript model
  // kind: sent | recv | stderr | connect | exit | close | restart | warn | error | info
  const GLYPHS = {
    sent: "→", recv: "←", stderr: "!", connect: "●", exit: "■", close: "×",
    restart: "", warn: "⚠", error: "✕", info: "·",
  };
  const LABELS = {
    sent: "sent", recv: "received", stderr: "stderr", connect: "connected", exit: "exit",
    close: "closed", restart: "restart", warn: "warning", error: "error", info: "note",
  };
  const NOTE_KINDS = new Set(["connect", "exit", "close", "restart", "warn", "error", "info"]);

  // What the page keeps, in two parts (behaviour C6):
  // - the window: the last MAX_ENTRIES entries, which can be scrolled through; older ones leave
  //   it and a marker row says how many ("4,995 earlier lines not shown");
  // - the journal: every entry of the session in compact columns, for copy and download, up to
  //   JOURNAL_MAX_LINES lines or JOURNAL_MAX_CHARS characters; past that its oldest chunk goes,
  //   and the export says how many lines it no longer holds.
  let entries = [];
  let droppedFromWindow = 0;
  let renderScheduled = false;
  let unseen = 0;
  let stickToBottom = true; // the next render scrolls to the end (the user just sent something)
  let following = true; // the view is at the end; kept by scroll and wheel events

  const KIND_CODES = Object.keys(GLYPHS);
  const JOURNAL_CHUNK = 4096;

  class Journal {
    constructor() { this.clear(); }

    clear() {
      this.chunks = [];
      this.lines = 0;
      this.chars = 0;
      this.dropped = 0;
    }

    add(entry) {
      let chunk = this.chunks[this.chunks.length - 1];
      if (!chunk || chunk.n === JOURNAL_CHUNK) chunk = this.chunk();
      const i = chunk.n++;
      chunk.time[i] = entry.time;
      chunk.latency[i] = entry.latency === undefined ? NaN : entry.latency;
      chunk.kind[i] = KIND_CODES.indexOf(entry.kind);
      const line = entry.bytes || (NOTE_KINDS.has(entry.kind) || entry.queued ? entry : entry.text);
      chunk.data[i] = line;
      const size = entry.bytes ? entry.bytes.length * 2 : (entry.text || "").length;
      chunk.chars += size;
      this.chars += size;
      this.lines += 1;
      this.trim();
    }

    // The lines of one envelope, in one pass: the journal's own columns, no entry objects.
    addLines(kind, time, latency, texts) {
      const code = KIND_CODES.indexOf(kind);
      const lat = latency === undefined ? NaN : latency;
      let chunk = this.chunks[this.chunks.length - 1];
      let added = 0;
      for (let j = 0; j < texts.length; j++) {
        if (!chunk || chunk.n === JOURNAL_CHUNK) chunk = this.chunk();
        const i = chunk.n++;
        const text = texts[j];
        chunk.time[i] = time;
        chunk.latency[i] = lat;
        chunk.kind[i] = code;
        chunk.data[i] = text;
        chunk.chars += text.length;
        added += text.length;
      }
      this.chars += added;
      this.lines += texts.length;
      this.trim();
    }

    chunk() {
      const chunk = {
        n: 0, chars: 0,
        time: new Float64Array(JOURNAL_CHUNK),
        latency: new Float32Array(JOURNAL_CHUNK),
        kind: new Uint8Array(JOURNAL_CHUNK),
        // A line's text (or bytes) as received; a note keeps its entry, which it may update.
        data: new Array(JOURNAL_CHUNK),
      };
      this.chunks.push(chunk);
      return chunk;
    }

    // Past either cap, the oldest chunks go (never the one being filled).
    trim() {
      while (this.chunks.length > 1 &&
             (this.lines > JOURNAL_MAX_LINES || this.chars > JOURNAL_MAX_CHARS)) {
        const old = this.chunks.shift();
        this.lines -= old.n;
        this.chars -= old.chars;
        this.dropped += old.n;
      }
    }

    // Every kept entry, oldest first, as the export needs it.
    *records() {
      for (const chunk of this.chunks) {
        for (let i = 0; i < chunk.n; i++) {
          const data = chunk.data[i];
          const latency = chunk.latency[i];
          if (data && typeof data === "object" && !(data instanceof Uint8Array)) {
            yield data;
            continue;
          }
          const record = { kind: KIND_CODES[chunk.kind[i]], time: chunk.time[i] };
          if (data instanceof Uint8Array) record.bytes = data;
          else record.text = data;
          if (!Number.isNaN(latency)) record.latency = latency;
          yield record;
        }
      }
    }
  }
  const journal = new Journal();

  // A note's text is a list of parts: strings, or [style, text] for chips and emphasis.
  function partsText(parts) {
    return parts.map((p) => (typeof p === "string" ? p : p[1])).join("");
  }

  function addEntry(kind, fields) {
    const entry = { kind, time: Date.now(), h: 0, ...fields };
    if (entry.parts) entry.text = partsText(entry.parts);
    entries.push(entry);
    journal.add(entry);
    addedSinceDraw++;
    if (!NOTE_KINDS.has(kind) && !following && !stickToBottom) unseen++;
    scheduleRender();
    return entry;
  }

  // The lines of one stdout or stderr envelope (behaviour C6): one pass into the journal, and
  // entries for the window only for the lines that can stay in it; the earlier lines of a read
  // longer than the window go straight behind the marker. They share the envelope's time and
  // latency, as they arrived together.
  function addLines(kind, texts, latency) {
    const time = Date.now();
    journal.addLines(kind, time, latency, texts);
    const skip = Math.max(0, texts.length - MAX_ENTRIES);
    droppedFromWindow += skip;
    for (let j = skip; j < texts.length; j++) {
      entries.push({ kind, time, h: 0, text: texts[j], latency });
    }
    addedSinceDraw += texts.length;
    if (!following && !stickToBottom) unseen += texts.length;
    scheduleRender();
  }

  // An envelope's lines: ``lines`` for the lines of one read, ``data`` for a single line.
  function envelopeLines(message) {
    if (!Array.isArray(message.lines)) return [String(message.data ?? "")];
    const texts = message.lines;
    for (let j = 0; j < texts.length; j++) {
      if (typeof texts[j] !== "string") texts[j] = String(texts[j] ?? "");
    }
    return texts;
  }

  function updateEntry(entry, fields) {
    Object.assign(entry, fields);
    if (entry.parts) entry.text = partsText(entry.parts);
    if (entry.node) {
      const fresh = renderEntry(entry);
      view.replace(entry, fresh);
    }
  }

  function textOf(entry) {
    if (entry.bytes) return `[binary ${plural(entry.bytes.length, "byte")}] ${hexOf(entry.bytes)}`;
    return entry.text;
  }

  // ------------------------------------------------------------------ DOM
  let ui = {};

  function scheduleRender() {
    if (renderScheduled) return;
    renderScheduled = true;
    // One DOM update per animation frame however many messages arrived (behaviour C6); the
    // timer covers hidden tabs, where animation frames do not run.
    window.requestAnimationFrame(() => flushRender(true));
    window.setTimeout(flushRender, 250);
  }

  // During a flood (more new lines between two drawings than a screen shows) each drawing
  // replaces every row in view, and drawing (rows, layout, paint) is what a flood costs the
  // page. So it draws at most every FLOOD_DRAW_MS then, leaving the time to the messages. It
  // also keeps typing prompt: it draws in a task of its own rather than in an animation frame
  // (a key waiting to be handled goes before a task, not before a frame), and not within
  // KEY_FRAME_MS of a key, whose own frame comes first. A few lines at a time are drawn at the
  // next frame, as always (behaviour C6).
  const FLOOD_LINES = 40;
  const FLOOD_DRAW_MS = 100;
  const KEY_FRAME_MS = 35;
  let addedSinceDraw = 0;
  let lastDrawAt = 0;
  let lastKeyAt = -Infinity;
  let drawTimer = null;

  function flooding() {
    return addedSinceDraw > FLOOD_LINES;
  }

  function drawLater(wait) {
    if (drawTimer !== null) return;
    drawTimer = window.setTimeout(() => { drawTimer = null; flushRender(); }, wait);
  }

  function flushRender(inFrame = false) {
    if (!renderScheduled || !ui.transcript) return;
    if (flooding() && !stickToBottom) {
      const wait = Math.max(lastDrawAt + FLOOD_DRAW_MS, lastKeyAt + KEY_FRAME_MS) - performance.now();
      if (wait > 1 || inFrame) { drawLater(Math.max(0, wait)); return; }
    }
    renderScheduled = false;
    if (entries.length > MAX_ENTRIES) {
      const drop = entries.length - MAX_ENTRIES;
      for (let i = 0; i < drop; i++) view.forget(entries[i]);
      entries = entries.slice(drop);
      droppedFromWindow += drop;
      view.shifted(drop);
    }
    const follow = stickToBottom || following;
    stickToBottom = false;
    if (follow) {
      following = true;
      unseen = 0;
    }
    view.render(follow);
    addedSinceDraw = 0;
    lastDrawAt = performance.now();
    document.body.classList.toggle("has-entries", entries.length > 0);
    if (droppedFromWindow) ui.markerText.textContent = `${plural(droppedFromWindow, "earlier line")} not shown`;
    ui.marker.hidden = droppedFromWindow === 0;
    if (!follow && unseen) {
      ui.jumpText.textContent = `${plural(unseen, "new message")}`;
      ui.jump.hidden = false;
    } else {
      ui.jump.hidden = true;
    }
  }

  // The transcript is virtual: only the rows in view (and a screen's height around them) are
  // in the document; spacers above and below stand for the others at their measured height,
  // or an estimate until a row has been shown once. A flood therefore costs one small DOM
  // update per frame, whatever its size.
  const OVERSCAN_PX = 600;
  const view = {
    first: 0, // entries[first, last) are in the document
    last: 0,
    offsets: new Float64Array(0), // offsets[i]: top of entries[i]; offsets[n]: total height
    dirty: true,
    ownScroll: -1, // the scrollTop the view set itself, so its scroll event is not the user's
    observer: null,

    perLine: 100, // characters on a row of the transcript, read once a frame
    rowHeight: 27, // a one-line row, as measured

    // Until a row has been laid out once, its height is estimated from its text, and a
    // one-line row is estimated exactly (so a flood of short lines moves nothing once shown).
    estimate(entry) {
      if (NOTE_KINDS.has(entry.kind)) return entry.kind === "connect" ? 48 : this.rowHeight;
      if (entry.bytes) return 44 + Math.ceil(Math.min(entry.bytes.length, HEX_LIMIT) / 8) * 18;
      const text = entry.text || "";
      const perLine = this.perLine;
      let lines = 1;
      if (text.length > perLine || text.includes("\n")) {
        lines = 0;
        for (const part of text.slice(0, TEXT_LIMIT).split("\n")) lines += Math.max(1, Math.ceil(part.length / perLine));
      }
      return lines === 1 ? this.rowHeight : 7 + lines * 19.5;
    },

    height(entry) {
      if (!entry.h && !entry.est) entry.est = this.estimate(entry);
      return entry.h || entry.est;
    },

    layout() {
      const n = entries.length;
      if (this.offsets.length < n + 1) this.offsets = new Float64Array(Math.max(n + 1, this.offsets.length * 2));
      let top = 0;
      for (let i = 0; i < n; i++) {
        this.offsets[i] = top;
        top += this.height(entries[i]);
      }
      this.offsets[n] = top;
      this.dirty = false;
      this.lastLaidOut = n;
    },

    // The first index whose row ends below ``y``.
    indexAt(y) {
      let lo = 0;
      let hi = entries.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.offsets[mid + 1] <= y) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    },

    forget(entry) {
      if (entry.node) {
        if (this.observer) this.observer.unobserve(entry.node);
        entry.node.remove();
        entry.node = null;
      }
    },

    shifted(count) {
      this.first = Math.max(0, this.first - count);
      this.last = Math.max(this.first, this.last - count);
      this.dirty = true;
    },

    replace(entry, fresh) {
      fresh.entry = entry;
      if (this.observer) {
        this.observer.unobserve(entry.node);
        this.observer.observe(fresh);
      }
      entry.node.replaceWith(fresh);
      entry.node = fresh;
    },

    clear() {
      for (const entry of entries.slice(this.first, this.last)) this.forget(entry);
      this.first = this.last = 0;
      this.dirty = true;
      ui.before.style.height = ui.after.style.height = "0px";
    },

    node(entry) {
      if (!entry.node) {
        entry.node = renderEntry(entry);
        entry.node.entry = entry;
        if (this.observer) this.observer.observe(entry.node);
      }
      return entry.node;
    },

    // Reads first (sizes, the scroll position), then writes, so a frame forces at most one
    // layout (setting the scroll position) besides the browser's own.
    render(follow) {
      const t = ui.transcript;
      const width = t.clientWidth;
      const viewHeight = t.clientHeight;
      const scrollTop = t.scrollTop;
      const origin = ui.rows.offsetTop;
      this.perLine = Math.max(20, Math.floor((width - 190) / 7.8));
      const n = entries.length;
      this.first = Math.min(this.first, n);
      this.last = Math.min(this.last, n);
      if (this.dirty || this.offsets.length < n + 1) {
        this.layout();
      } else {
        // Only new rows at the end: extend the offsets without walking the rest.
        let top = this.offsets[this.lastLaidOut];
        for (let i = this.lastLaidOut; i < n; i++) {
          this.offsets[i] = top;
          top += this.height(entries[i]);
        }
        this.offsets[n] = top;
        this.lastLaidOut = n;
      }
      const total = this.offsets[n];
      const viewTop = follow ? Math.max(0, origin + total - viewHeight) : scrollTop;
      // Following a flood, the rows above the view would be replaced before anyone scrolls.
      const above = follow && flooding() ? 0 : OVERSCAN_PX;
      const from = this.indexAt(Math.max(0, viewTop - origin - above));
      const to = Math.min(n, this.indexAt(viewTop - origin + viewHeight + OVERSCAN_PX) + 1);
      this.show(from, to);
      this.place(follow);
    },

    place(follow) {
      const n = entries.length;
      ui.before.style.height = `${this.offsets[this.first]}px`;
      ui.after.style.height = `${this.offsets[n] - this.offsets[this.last]}px`;
      if (follow) this.scrollTo(1e9);
    },

    show(from, to) {
      if (to <= this.first || from >= this.last) {
        for (let i = this.first; i < this.last; i++) this.forget(entries[i]);
        const fragment = document.createDocumentFragment();
        for (let i = from; i < to; i++) fragment.append(this.node(entries[i]));
        ui.before.after(fragment);
      } else {
        for (let i = this.first; i < from; i++) this.forget(entries[i]);
        for (let i = to; i < this.last; i++) this.forget(entries[i]);
        const head = document.createDocumentFragment();
        for (let i = from; i < this.first; i++) head.append(this.node(entries[i]));
        ui.before.after(head);
        const tail = document.createDocumentFragment();
        for (let i = Math.max(this.last, from); i < to; i++) tail.append(this.node(entries[i]));
        ui.after.before(tail);
      }
      this.first = from;
      this.last = to;
    },

    // A row's real height comes from the ResizeObserver once it is laid out (and again when
    // it changes: a fold, a wider window); the spacers and the scroll position follow in the
    // same frame, before it is painted.
    resized(records) {
      let changed = false;
      for (const record of records) {
        const node = record.target;
        const entry = node.entry;
        if (!entry || entry.node !== node) continue;
        const box = record.borderBoxSize && record.borderBoxSize[0];
        const h = box ? box.blockSize : node.offsetHeight;
        if (!h) continue;
        if (!entry.h && !NOTE_KINDS.has(entry.kind) && !entry.bytes && entry.est === this.rowHeight &&
            Math.abs(h - this.rowHeight) > 0.5 && h < this.rowHeight * 1.6) {
          this.rowHeight = h; // the first real one-line row sets the estimate for the others
        }
        if (Math.abs(h - (entry.h || entry.est)) > 0.5) changed = true;
        entry.h = h;
      }
      if (changed && ui.transcript) {
        this.layout();
        this.place(following);
      }
    },

    scrollTo(top) {
      ui.transcript.scrollTop = top;
      this.ownScroll = ui.transcript.scrollTop;
    },
  };

  function nearBottom() {
    const t = ui.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 48;
  }

  function renderParts(parts, into) {
    for (const part of parts) {
      if (typeof part === "string") into.append(part);
      else into.append(el(part[0] === "chip" ? "span" : part[0], part[0] === "chip" ? "chip" : "", part[1]));
    }
  }

  function renderText(text, into) {
    if (text === "") {
      into.append(span("empty-msg", "(empty message)"));
      return;
    }
    if (text.length <= TEXT_LIMIT) {
      into.append(text);
      return;
    }
    into.append(text.slice(0, TEXT_LIMIT), span("hint", "…"));
    const more = el("button", "more", `Show all ${plural(text.length, "character")}`);
    more.type = "button";
    more.addEventListener("click", () => { into.replaceChildren(text); });
    into.append("\n", more);
  }

  function renderEnv(env, into) {
    const names = Object.keys(env);
    if (!names.length) return;
    const box = el("details", "env");
    // The server sends the variables that say how the path and query arrive first.
    box.append(el("summary", "", `CGI environment (${names.length} variables)`));
    box.append(el("p", "env-hint",
      "The program reads the path as PATH_INFO and the query string as QUERY_STRING: " +
      "edit them above to pass it arguments."));
    const table = el("table");
    for (const name of names) {
      const row = el("tr");
      row.append(el("td", "", name), el("td", "", String(env[name])));
      table.append(row);
    }
    box.append(table);
    into.append(box);
  }

  function renderEntry(entry) {
    const row = el("div", `entry ${entry.kind}`);
    if (NOTE_KINDS.has(entry.kind)) row.classList.add("note");
    if (entry.kind === "exit") row.classList.add(entry.ok ? "ok" : "bad");
    if (entry.bytes) row.classList.add("binary");
    if (entry.queued || entry.unsent) row.classList.add(entry.queued ? "queued" : "unsent");
    row.dataset.kind = entry.kind;

    row.append(el("span", "time", clock(entry.time)));
    // The direction is named for screen readers on the glyph, so copying a reply's text
    // with the mouse copies just the text.
    const dir = el("span", "dir", GLYPHS[entry.kind]);
    dir.setAttribute("role", "img");
    dir.setAttribute("aria-label", LABELS[entry.kind]);
    row.append(dir);

    const body = el("div", "body");
    if (entry.parts) {
      renderParts(entry.parts, body);
      if (entry.env) renderEnv(entry.env, body);
    } else if (entry.bytes) {
      renderHex(entry.bytes, body);
    } else if (entry.kind === "stderr") {
      body.append(span("tag", "stderr"));
      renderText(entry.text, body);
    } else if (entry.kind === "sent" && (entry.queued || entry.unsent)) {
      body.append(span("tag", entry.queued ? "queued" : "not sent"));
      renderText(entry.text, body);
    } else {
      const json = entry.kind === "recv" ? parseJson(entry.text) : undefined;
      if (json !== undefined) renderJson(json, entry.text, body);
      else renderText(entry.text, body);
    }
    row.append(body);

    const meta = el("span", "meta");
    if (entry.latency !== undefined) {
      const latency = span("latency", `+${duration(entry.latency)}`);
      latency.title = "Time since the last message sent";
      meta.append(latency);
    }
    if (!NOTE_KINDS.has(entry.kind)) meta.append(copyButton.cloneNode());
    row.append(meta);
    return row;
  }

  // Every message row has a copy button (shown on hover). A flood draws thousands of rows, so
  // each is a copy of one plain button, its icon drawn by the style sheet and its clicks
  // answered by one listener on the transcript (copyClicked).
  const copyButton = el("button", "copy-entry");
  copyButton.type = "button";
  copyButton.tabIndex = -1; // the export menu covers keyboard users; keep Tab for the controls
  copyButton.title = "Copy this message";

  function copyClicked(event) {
    const button = event.target.closest(".copy-entry");
    const row = button && button.closest(".entry");
    const entry = row && row.entry;
    if (entry) copyText(entry.bytes ? hexOf(entry.bytes) : entry.text, "Message copied");
  }

  function clearTranscript() {
    view.clear();
    entries = [];
    journal.clear();
    droppedFromWindow = 0;
    ui.marker.hidden = true;
    document.body.classList.remove("has-entries");
    unseen = 0;
    ui.jump.hidden = true;
  }

  // ------------------------------------------------------------------ toast, clipboard, export
  let toastTimer = null;
  function toast(message) {
    ui.toast.textContent = message;
    ui.toast.hidden = false;
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => { ui.toast.hidden = true; }, 2200);
  }

  async function copyText(text, done) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard API refused (no permission, insecure context): fall back to a selection.
      const area = el("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "sr-only";
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    toast(done);
  }

  // The export holds every entry the journal kept, and says so when it no longer holds them
  // all (behaviour C6).
  function journalNote() {
    if (!journal.dropped) return null;
    return `${plural(journal.dropped, "earlier line")} not kept: the console keeps the last ` +
      `${grouped(JOURNAL_MAX_LINES)} lines or ${JOURNAL_MAX_CHARS / 2 ** 20} MiB of a session`;
  }

  function exportText() {
    const lines = [`# wsdev transcript · ${endpointUrl(target)} · ${new Date().toISOString()}\n`];
    const note = journalNote();
    if (note) lines.push(`# ${note}\n`);
    for (const entry of journal.records()) {
      const prefix = `${clock(entry.time)} ${GLYPHS[entry.kind] || "·"} `;
      let text = textOf(entry);
      if (entry.kind === "stderr") text = `[stderr] ${text}`;
      if (entry.queued) text += "  (queued, not sent)";
      if (entry.latency !== undefined) text += `  (+${duration(entry.latency)})`;
      lines.push(`${prefix}${text.includes("\n") ? text.split("\n").join(`\n${" ".repeat(prefix.length)}`) : text}\n`);
    }
    return lines;
  }

  function exportJsonLines() {
    const lines = [];
    const note = journalNote();
    if (note) lines.push(`${JSON.stringify({ kind: "truncated", lines: journal.dropped, data: note })}\n`);
    for (const entry of journal.records()) {
      const record = { time: new Date(entry.time).toISOString(), kind: entry.kind };
      if (entry.bytes) {
        record.binary = true;
        record.hex = hexOf(entry.bytes).replace(/ /g, "");
        record.length = entry.bytes.length;
      } else {
        record.data = entry.text;
      }
      if (entry.queued) record.queued = true;
      if (entry.latency !== undefined) record.latency_ms = Math.round(entry.latency * 10) / 10;
      if (entry.close) Object.assign(record, entry.close);
      if (entry.env) record.env = entry.env;
      lines.push(`${JSON.stringify(record)}\n`);
    }
    return lines;
  }

  function download(parts, extension, mime) {
    const stamp = new Date().toISOString().replace(/[:]/g, "").replace(/\..*/, "").replace("T", "-");
    const blob = new Blob(parts, { type: mime });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = `wsdev-transcript-${stamp}.${extension}`;
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function runExport(action) {
    const count = plural(journal.lines, "line");
    if (action === "copy-text") copyText(exportText().join(""), `Copied ${count} as text`);
    else if (action === "copy-jsonl") copyText(exportJsonLines().join(""), `Copied ${count} as JSON lines`);
    else if (action === "download-text") download(exportText(), "txt", "text/plain");
    else if (action === "download-jsonl") download(exportJsonLines(), "jsonl", "application/x-ndjson");
    else if (action === "download-test" || action === "save-test") transcriptAction(action);
  }

  // The server keeps each console session in the format of --record (behaviour C8): download
  // it as it is, or save it into the project (tests/ unless another folder is named) as a test.
  async function transcriptAction(action) {
    const id = session && session.hello ? session.hello.id : null;
    if (!id) { toast("No session to save yet"); return; }
    const url = SETTINGS.socket.replace(/ws$/, "") + `transcript/${encodeURIComponent(id)}`;
    if (action === "download-test") {
      const link = el("a");
      link.href = url;
      link.download = "";
      document.body.append(link);
      link.click();
      link.remove();
      return;
    }
    const answer = window.prompt("Save this session as a test: folder/name", "tests/session");
    if (!answer) return;
    const cut = answer.lastIndexOf("/");
    const body = { folder: cut < 0 ? "tests" : answer.slice(0, cut), name: answer.slice(cut + 1) };
    try {
      const response = await fetch(`${url}/save`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const result = await response.json();
      toast(response.ok ? `Saved as ${result.path} · run: wsdev test ${result.path}` : `Not saved: ${result.error}`);
    } catch (error) {
      toast(`Not saved: ${error}`);
    }
  }

  // ------------------------------------------------------------------ history
  function loadHistory() {
    try {
      const saved = JSON.parse(store.get(HISTORY_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((item) => typeof item === "string") : [];
    } catch {
      return [];
    }
  }
  let history = loadHistory();
  let historyIndex = history.length;
  let draft = "";

  function remember(text) {
    history = loadHistory(); // another tab may have added to it
    if (history[history.length - 1] !== text) history.push(text);
    if (history.length > HISTORY_MAX) history = history.slice(-HISTORY_MAX);
    store.set(HISTORY_KEY, JSON.stringify(history));
    historyIndex = history.length;
    draft = "";
  }

  function setInput(text) {
    ui.input.value = text;
    ui.input.setSelectionRange(text.length, text.length);
    autosize();
  }

  function historyStep(delta) {
    const next = historyIndex + delta;
    if (next < 0 || next > history.length) return false;
    if (historyIndex === history.length) draft = ui.input.value;
    historyIndex = next;
    setInput(next === history.length ? draft : history[next]);
    return true;
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${ui.input.scrollHeight + 2}px`;
  }

  // ------------------------------------------------------------------ connection
  let target = { path: SETTINGS.path, query: SETTINGS.query };
  let session = null; // the current socket and what it has told us
  let state = "closed"; // connecting | open | closed | reconnecting
  let attempt = 0;
  let retryTimer = null;
  let retryAt = 0;
  let countdown = null;
  let outageNoted = false;
  let pending = []; // messages typed while not connected, sent once open
  let lastSentAt = null;
  let lastExit = null;

  function setState(next) {
    state = next;
    renderStatus();
  }

  function renderStatus() {
    const hello = session && session.opened ? session.hello : null;
    let text;
    if (state === "open") {
      text = hello ? `Open · #${hello.seq} · pid ${hello.pid}` : "Open";
    } else if (state === "connecting") {
      text = "Connecting…";
    } else if (state === "reconnecting") {
      const wait = retryTimer ? Math.max(0, retryAt - performance.now()) : 0;
      text = wait > 150 ? `Reconnecting in ${(wait / 1000).toFixed(1)} s` : "Reconnecting…";
    } else {
      text = lastExit ? `Closed · ${lastExit}` : "Closed";
    }
    if (pending.length) text += ` · ${pending.length} queued`;
    ui.status.dataset.state = state;
    ui.statusText.textContent = text;
    ui.status.title = text;

    const offline = state === "closed";
    ui.connect.querySelector("use").setAttribute("href", offline ? "#i-plug" : "#i-unplug");
    ui.connectLabel.textContent = offline ? "Connect" : "Disconnect";
    ui.connect.title = `${offline ? "Connect" : "Disconnect"} (Alt+C)`;
    ui.newVersion.hidden = !runsOldVersion();
    document.title = `${targetLabel(target)} · ${state} · wsdev`;
  }

  function live() {
    return Boolean(session && session.opened && session.hello && session.ws.readyState === WebSocket.OPEN &&
      !session.exit && !session.restart && !session.error);
  }

  function cancelRetry() {
    window.clearTimeout(retryTimer);
    window.clearInterval(countdown);
    retryTimer = null;
    countdown = null;
  }

  function scheduleRetry(delay) {
    cancelRetry();
    const wait = delay ?? Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MAX_MS);
    attempt += 1;
    retryAt = performance.now() + wait;
    retryTimer = window.setTimeout(() => { retryTimer = null; connect(); }, wait);
    if (wait > 150) countdown = window.setInterval(renderStatus, 100);
    setState("reconnecting");
  }

  function connect() {
    cancelRetry();
    if (session && session.ws.readyState <= WebSocket.OPEN) {
      session.intentional = true;
      session.ws.close(1000, "console reconnect");
    }
    let ws;
    try {
      ws = new WebSocket(socketUrl(target));
    } catch (err) {
      addEntry("error", { parts: [`Cannot open a WebSocket: ${err.message}`] });
      setState("closed");
      return;
    }
    ws.binaryType = "arraybuffer";
    const mine = {
      ws, target: { ...target }, opened: false, hello: null, exit: null, restart: null,
      error: null, intentional: false, entry: null, generation: restartsSeen,
    };
    session = mine;
    lastSentAt = null;
    setState(attempt > 0 ? "reconnecting" : "connecting");
    ws.addEventListener("open", () => { if (session === mine) opened(mine); });
    ws.addEventListener("message", (event) => { if (session === mine) received(mine, event.data, event.timeStamp); });
    ws.addEventListener("close", (event) => { if (session === mine) closed(mine, event); });
  }

  function disconnect() {
    cancelRetry();
    dropQueued();
    if (session && session.ws.readyState <= WebSocket.OPEN) {
      session.intentional = true;
      session.ws.close(1000, "closed by console");
    }
    setState("closed");
  }

  function reconnectNow() {
    if (session && session.ws.readyState === WebSocket.CONNECTING) return;
    attempt = 0;
    connect();
  }

  function opened(mine) {
    mine.opened = true;
    attempt = 0;
    outageNoted = false;
  }

  // The socket is open, but only the hello says the program runs: a refusal (429, a 404 under
  // --dir, a program that cannot start) comes as an error envelope instead, and the console
  // never says "Connected" for it (behaviour C2).
  function started(mine) {
    lastExit = null;
    mine.entry = addEntry("connect", { parts: connectParts(mine), env: mine.hello.env || null });
    setState("open");
    const waiting = pending;
    pending = [];
    for (const item of waiting) sendQueued(item);
  }

  function connectParts(mine) {
    const parts = ["Connected to ", ["chip", targetLabel(mine.target)]];
    const hello = mine.hello;
    if (hello) {
      if (hello.seq !== undefined) parts.push(" · ", ["strong", `#${hello.seq}`]);
      if (hello.pid !== undefined) parts.push(" · pid ", ["strong", String(hello.pid)]);
      if (hello.command) parts.push(" · ", ["chip", String(hello.command)]);
      if (hello.binary) parts.push(" · binary mode");
      if (typeof hello.name === "string" && hello.name) parts.push(" · as ", ["strong", hello.name]);
    }
    return parts;
  }

  // ``at``: when the message arrived, on performance.now()'s clock (the event's own time stamp:
  // reading the clock for each message of a flood is a cost of its own).
  function received(mine, data, at) {
    if (typeof data !== "string") {
      addEntry("recv", { bytes: new Uint8Array(data), latency: latency(at) });
      return;
    }
    let message;
    try { message = JSON.parse(data); } catch { message = null; }
    if (!message || typeof message !== "object" || typeof message.type !== "string") {
      addEntry("recv", { text: data, latency: latency(at) }); // not an envelope: show it as is
      return;
    }
    switch (message.type) {
      case "hello":
        mine.hello = message;
        if (!mine.entry) started(mine);
        break;
      case "stdout":
        addLines("recv", envelopeLines(message), latency(at));
        break;
      case "stderr":
        addLines("stderr", envelopeLines(message), undefined);
        break;
      case "stalled":
        addEntry("warn", {
          parts: [
            "The program wrote ", ["strong", plural(Number(message.bytes) || 0, "byte")],
            " without a newline over a second ago. Each message must end with a newline, " +
            "and buffered output must be flushed (Python: print(…, flush=True); C: fflush(stdout)).",
          ],
        });
        break;
      case "exit": {
        mine.exit = message;
        const status = String(message.status || "exited");
        lastExit = status;
        addEntry("exit", { ok: message.code === 0, parts: ["Program exited: ", ["strong", status]] });
        break;
      }
      case "restart":
        mine.restart = Array.isArray(message.files) ? message.files.map(String) : [];
        break;
      case "error": {
        mine.error = message;
        const parts = [mine.hello ? "" : "Refused: ", String(message.message || "the server refused the connection")];
        if (message.status) parts.push(" ", ["chip", `HTTP ${message.status}`]);
        addEntry("error", { parts });
        break;
      }
      default:
        break; // a newer server's envelope this page does not know yet
    }
  }

  function latency(at) {
    // A message that arrived before the send but was handled after it is no later than it.
    return lastSentAt === null ? undefined : Math.max(0, at - lastSentAt);
  }

  function changedLabel(files) {
    const names = files.map((f) => f.split(/[\\/]/).pop());
    if (!names.length) return "↻ program changed";
    if (names.length <= 3) return `↻ ${names.join(", ")} changed`;
    return `↻ ${names.slice(0, 2).join(", ")} and ${names.length - 2} more files changed`;
  }

  function closed(mine, event) {
    const code = event.code;
    const reason = event.reason || "";
    if (!mine.opened) {
      if (mine.intentional) { setState("closed"); return; }
      if (!outageNoted) {
        outageNoted = true;
        addEntry("warn", { parts: [`Cannot reach the wsdev server at ${window.location.host}; retrying…`] });
      }
      scheduleRetry();
      return;
    }
    if (mine.error && !mine.hello) {
      // A refusal: its one row is shown already; the close that follows adds nothing.
      lastExit = `refused${mine.error.status ? ` (HTTP ${mine.error.status})` : ""}`;
      dropQueued();
      setState("closed");
      return;
    }
    const closeInfo = { code, reason };
    // The server's reason says it best ("exit 3"); a bare code gets its standard meaning.
    const codeChip = ["chip", `${code} ${reason || CLOSE_NAMES[code] || "closed"}`];
    if (mine.intentional) {
      addEntry("close", { parts: ["Disconnected ", codeChip], close: closeInfo });
      setState("closed");
      return;
    }
    if (code === 1012 || mine.restart) {
      addEntry("restart", {
        parts: [["strong", changedLabel(mine.restart || [])], " · closed ", codeChip, " · reconnecting"],
        close: closeInfo,
      });
      attempt = 0;
      scheduleRetry(RESTART_DELAY_MS);
      return;
    }
    const programEnded = Boolean(mine.exit) || code === 1000 || code === 1011;
    const final = programEnded || Boolean(mine.error) || code === 1009 || code === 1008;
    if (final && missedRestart(mine)) {
      // The program ended just as a restart was announced: run the edited one.
      addEntry("close", { parts: ["Connection closed ", codeChip, " · restarted, reconnecting"], close: closeInfo });
      reconnectNow();
      return;
    }
    if (final) {
      const again = followingRestarts ? ", or save a change" : "";
      const hint = pending.length ? " · starting it again" : ` · press Enter to start the program again${again}`;
      addEntry("close", { parts: ["Connection closed ", codeChip, hint], close: closeInfo });
      if (pending.length) reconnectNow();
      else setState("closed");
      return;
    }
    const why = code === 1001 ? "Server going away " : "Connection lost ";
    addEntry("close", { parts: [why, codeChip, " · reconnecting"], close: closeInfo });
    attempt = 0;
    scheduleRetry();
  }

  // ------------------------------------------------------------------ restart on edit (D2)
  // A console follows the edit loop even after its program died (a broken save): the server
  // announces every restart on a socket of its own, and a console the user did not close
  // reconnects to run the edited program.
  let restartsSeen = 0; // the newest restart generation the server has announced
  let followingRestarts = false;
  let keepsOpen = false; // --reload=new: a save leaves a live program running (its notices say so)

  // Under --reload=new a live program keeps the version it started with; the console offers
  // to reconnect to the edited one, and only while a newer one exists.
  function runsOldVersion() {
    return keepsOpen && state === "open" && Boolean(session && session.hello) &&
      !session.intentional && generationOf(session) < restartsSeen;
  }

  function keptOpen(notice) {
    const files = Array.isArray(notice.files) ? notice.files.map(String) : [];
    addEntry("restart", {
      parts: [["strong", changedLabel(files)], " · this connection keeps the version it started with"],
    });
  }

  function generationOf(mine) {
    const hello = mine.hello;
    return hello && typeof hello.generation === "number" ? hello.generation : mine.generation;
  }

  function missedRestart(mine) {
    return Boolean(mine) && !mine.intentional && generationOf(mine) < restartsSeen;
  }

  function followRestarts() {
    let ws;
    try {
      ws = new WebSocket(`${WS_SCHEME}://${window.location.host}/_wsdev/restarts`);
    } catch {
      return;
    }
    ws.addEventListener("open", () => { followingRestarts = true; });
    ws.addEventListener("message", (event) => {
      let notice;
      try { notice = JSON.parse(event.data); } catch { return; }
      if (!notice || typeof notice.generation !== "number") return;
      // The first notice is this server's count so far: a new server starts again from 0.
      restartsSeen = notice.type === "restart" ? Math.max(restartsSeen, notice.generation) : notice.generation;
      keepsOpen = notice.reload === "new";
      // A live session gets its own 1012; only a console left closed by its program needs this.
      if (notice.type === "restart" && state === "closed" && missedRestart(session)) reconnectNow();
      else if (notice.type === "restart" && runsOldVersion()) keptOpen(notice);
      renderStatus();
    });
    ws.addEventListener("close", () => {
      // Without the server's count, no restart can be missed (nor a reconnect repeated).
      restartsSeen = 0;
      followingRestarts = false;
      keepsOpen = false;
      renderStatus();
      window.setTimeout(followRestarts, RETRY_MAX_MS); // the server is away: look again later
    });
  }

  function payloadFields(payload) {
    return typeof payload === "string" ? { text: payload } : { bytes: payload };
  }

  function sendNow(payload) {
    session.ws.send(payload);
    stickToBottom = true;
    addEntry("sent", payloadFields(payload));
    lastSentAt = performance.now();
  }

  // A message typed while no program runs is shown at once, marked queued, and sent when the
  // next one starts. Its replies get no latency badge: the program's first lines (a greeting)
  // may come before its answer, and only a message sent to a running program starts a turn.
  function sendQueued(item) {
    session.ws.send(item.payload);
    updateEntry(item.entry, { queued: false });
    lastSentAt = null;
  }

  function dropQueued() {
    for (const item of pending) updateEntry(item.entry, { queued: false, unsent: true });
    pending = [];
  }

  function submit() {
    const text = ui.input.value;
    if (text === "") {
      if (!live()) reconnectNow();
      return;
    }
    let payload = text;
    if (ui.format.value === "hex") {
      payload = parseHex(text);
      if (payload === null) {
        toast("Not hex: use pairs of digits, like 48 69 0a");
        return;
      }
    }
    remember(text);
    setInput("");
    if (live()) {
      sendNow(payload);
      return;
    }
    stickToBottom = true;
    pending.push({ payload, entry: addEntry("sent", { ...payloadFields(payload), queued: true }) });
    // A program that has exited (or a closed console) starts again for this message; a
    // connection on its way sends it as soon as it opens.
    if (state === "closed" || (state === "reconnecting" && retryTimer)) reconnectNow();
    renderStatus();
  }

  // ------------------------------------------------------------------ endpoint editing
  function showTarget() {
    ui.path.value = target.path;
    ui.query.value = target.query;
  }

  function retarget() {
    const next = normalizeTarget(ui.path.value, ui.query.value);
    target = next;
    showTarget();
    // Keep the address bar pointing at the same endpoint, so a reload or a shared link opens
    // the console on it.
    const label = targetLabel(next);
    const url = AT_PREFIX || next.path.startsWith("/_wsdev/") ? `/_wsdev/#${label}` : label;
    try { window.history.replaceState(null, "", url); } catch { /* keep the old address */ }
    addEntry("info", { parts: ["Endpoint set to ", ["chip", label]] });
    attempt = 0;
    connect();
    ui.input.focus();
  }

  function initialTarget() {
    if (AT_PREFIX && window.location.hash.length > 1) {
      const given = decodeURIComponent(window.location.hash.slice(1));
      const [path, ...rest] = given.split("?");
      target = normalizeTarget(path, rest.join("?"));
    }
  }

  // ------------------------------------------------------------------ menus and keys
  function openMenu(focusFirst) {
    ui.exportList.hidden = false;
    ui.exportButton.setAttribute("aria-expanded", "true");
    if (focusFirst) ui.exportList.querySelector("button").focus();
  }
  function closeMenu(focusButton) {
    if (ui.exportList.hidden) return false;
    ui.exportList.hidden = true;
    ui.exportButton.setAttribute("aria-expanded", "false");
    if (focusButton) ui.exportButton.focus();
    return true;
  }

  function menuKeys(event) {
    const items = [...ui.exportList.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === "Tab") {
      closeMenu(false);
    }
  }

  // ------------------------------------------------------------------ sharing a room (B14)
  // Under --lan the server tells the page its room's LAN address and join secret: the link
  // for this endpoint is one people on the same network can open (and the QR code, the room's).
  function shareLink() {
    const room = SETTINGS.room;
    const params = [target.query, `join=${encodeURIComponent(room.join)}`].filter(Boolean);
    return `${room.origin}${target.path}?${params.join("&")}`;
  }
  function toggleShare(open) {
    const panel = document.getElementById("share-panel");
    const show = open === undefined ? panel.hidden : open;
    if (show) document.getElementById("share-link").textContent = shareLink();
    panel.hidden = !show;
    document.getElementById("share").setAttribute("aria-expanded", String(show));
  }
  function setUpSharing() {
    if (!SETTINGS.room) return;
    document.getElementById("share-menu").hidden = false;
    const qr = el("img");
    qr.src = SETTINGS.room.qr;
    qr.alt = "QR code of the room's link";
    qr.width = qr.height = 184;
    document.getElementById("share-qr").append(qr);
    document.getElementById("share").addEventListener("click", () => toggleShare());
    document.getElementById("share-copy").addEventListener("click", () => copyText(shareLink(), `Copied ${shareLink()}`));
    document.addEventListener("click", (event) => {
      if (!event.target.closest("#share-menu")) toggleShare(false);
    });
  }

  function isEditable(node) {
    return node && (node.tagName === "INPUT" || node.tagName === "TEXTAREA" || node.tagName === "SELECT");
  }

  function globalKeys(event) {
    if (event.defaultPrevented) return;
    const plainCtrl = (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey;
    const plainAlt = event.altKey && !event.ctrlKey && !event.metaKey;
    if (plainCtrl && event.key.toLowerCase() === "l") {
      event.preventDefault();
      clearTranscript();
      ui.input.focus();
    } else if (plainAlt && event.code === "KeyC") {
      event.preventDefault();
      if (state === "closed") reconnectNow();
      else disconnect();
    } else if (plainAlt && event.code === "KeyP") {
      event.preventDefault();
      ui.path.focus();
      ui.path.select();
    } else if (plainAlt && event.code === "KeyT") {
      event.preventDefault();
      toggleTheme();
    } else if (event.key === "F1" || (event.key === "?" && !isEditable(event.target))) {
      event.preventDefault();
      openHelp();
    } else if (event.key === "Escape" && !ui.help.open) {
      if (closeMenu(true)) return;
      ui.input.focus();
    }
  }

  function inputKeys(event) {
    if (event.isComposing) return;
    const mods = event.shiftKey || event.ctrlKey || event.altKey || event.metaKey;
    const input = ui.input;
    if (event.key === "Enter" && !mods) {
      event.preventDefault();
      submit();
    } else if (event.key === "ArrowUp" && !mods && input.selectionStart === input.selectionEnd &&
               !input.value.slice(0, input.selectionStart).includes("\n")) {
      if (historyStep(-1)) event.preventDefault();
    } else if (event.key === "ArrowDown" && !mods && input.selectionStart === input.selectionEnd &&
               !input.value.slice(input.selectionEnd).includes("\n")) {
      if (historyStep(1)) event.preventDefault();
    }
  }

  function openHelp() {
    closeMenu(false);
    if (!ui.help.open) ui.help.showModal();
  }

  // ------------------------------------------------------------------ start
  function start() {
    const $ = (id) => document.getElementById(id);
    // Other wsdev pages (the --dir listing) load this script for the theme alone.
    if (!$("transcript")) return;
    ui = {
      transcript: $("transcript"), jump: $("jump"), jumpText: $("jump-text"),
      input: $("input"), format: $("format"), composer: $("composer"),
      status: $("status"), statusText: $("status-text"), newVersion: $("new-version"),
      connect: $("connect"), connectLabel: $("connect").querySelector(".label"),
      path: $("path"), query: $("query"), targetForm: $("target"), origin: $("origin"),
      exportButton: $("export"), exportList: $("export-list"),
      help: $("help"), toast: $("toast"),
      marker: $("marker"), markerText: $("marker-text"), rows: $("rows"),
      before: $("rows-before"), after: $("rows-after"),
    };
    initialTarget();
    showTarget();
    ui.origin.textContent = `${WS_SCHEME}://${window.location.host}`;
    const who = SETTINGS.command || "the program";
    ui.input.placeholder = `Message to ${who}`;
    const mode = [SETTINGS.dirMode && "--dir", SETTINGS.binary && "--binary"].filter(Boolean);
    $("version").textContent = [`wsdev ${SETTINGS.version}`.trim(), ...mode].join(" · ");
    if (SETTINGS.dirMode) ui.path.placeholder = "/script-name/extra/path";

    ui.composer.addEventListener("submit", (event) => { event.preventDefault(); submit(); ui.input.focus(); });
    ui.input.addEventListener("keydown", inputKeys);
    ui.input.addEventListener("input", autosize);
    // Two text fields and no submit button: a form would not submit on Enter by itself.
    ui.targetForm.addEventListener("submit", (event) => { event.preventDefault(); retarget(); });
    for (const field of [ui.path, ui.query]) {
      field.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); retarget(); }
      });
    }
    ui.connect.addEventListener("click", () => {
      if (state === "closed") reconnectNow();
      else disconnect();
    });
    ui.newVersion.addEventListener("click", () => { reconnectNow(); ui.input.focus(); });
    $("clear").addEventListener("click", () => { clearTranscript(); ui.input.focus(); });
    $("theme").addEventListener("click", toggleTheme);
    $("copy-url").addEventListener("click", () => copyText(endpointUrl(target), `Copied ${endpointUrl(target)}`));
    $("help-open").addEventListener("click", openHelp);
    $("help-more").addEventListener("click", openHelp);
    ui.help.addEventListener("close", () => ui.input.focus());

    ui.exportButton.addEventListener("click", (event) => {
      if (ui.exportList.hidden) openMenu(event.detail === 0);
      else closeMenu(false);
    });
    ui.exportList.addEventListener("keydown", menuKeys);
    ui.exportList.addEventListener("click", (event) => {
      const item = event.target.closest("[data-export]");
      if (!item) return;
      closeMenu(true);
      runExport(item.dataset.export);
    });
    document.addEventListener("click", (event) => {
      if (!event.target.closest("#export-menu")) closeMenu(false);
    });
    document.addEventListener("keydown", globalKeys);
    document.addEventListener("keydown", () => { lastKeyAt = performance.now(); }, { capture: true, passive: true });

    // The view follows the end until the user scrolls up; scrolling back to the end follows
    // again. A scroll the view made itself says nothing about the user.
    let lastScrollTop = 0;
    ui.transcript.addEventListener("scroll", () => {
      const top = ui.transcript.scrollTop;
      const own = Math.abs(top - view.ownScroll) < 1;
      view.ownScroll = -1;
      if (!own) {
        following = top >= lastScrollTop && nearBottom();
        if (following) { unseen = 0; ui.jump.hidden = true; }
      }
      lastScrollTop = top;
      scheduleRender();
    }, { passive: true });
    ui.transcript.addEventListener("wheel", (event) => {
      if (event.deltaY < 0) following = false;
    }, { passive: true });
    ui.transcript.addEventListener("keydown", (event) => {
      if (["ArrowUp", "PageUp", "Home"].includes(event.key)) following = false;
    });
    if (window.ResizeObserver) view.observer = new ResizeObserver((records) => view.resized(records));
    window.addEventListener("resize", () => { view.dirty = true; scheduleRender(); });
    ui.jump.addEventListener("click", () => {
      following = true;
      scheduleRender();
      ui.input.focus();
    });
    $("marker-download").addEventListener("click", () => runExport("download-text"));
    ui.rows.addEventListener("click", copyClicked);

    autosize();
    ui.input.focus();
    renderStatus();
    connect();
    followRestarts();
    setUpSharing();
    setUpName($("name"), (name) => {
      // A new connection carries the new name (the program may be told it).
      addEntry("info", { parts: name ? ["Your name is now ", ["chip", name]] : ["Your name is cleared"] });
      attempt = 0;
      connect(); // also in place of a connection still opening under the old name
      ui.input.focus();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
