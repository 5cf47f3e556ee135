/*
 * On-screen PIN keypad shared by the PIN page (/pin/) and the kiosk (/kiosk/).
 *
 * Typed digits live only in PinBuffer byte arrays, never in JavaScript strings
 * or in the DOM (the display shows dots).  A request body carrying PINs is
 * assembled as bytes (secretJson / pinLines), handed to fetch(), which copies
 * it when the request is created, and is zeroed right after, together with
 * the buffers it came from.  residue() counts the non-zero bytes left in every
 * buffer and body this script made: 0 once everything has been wiped.
 */
"use strict";

(function () {
  const DIGIT_ZERO = 0x30;
  const live = new Set();
  const encoder = new TextEncoder();

  class PinBuffer {
    constructor(max) {
      this.bytes = new Uint8Array(max);
      this.length = 0;
      live.add(this.bytes);
    }

    push(digit) {
      if (this.length >= this.bytes.length) {
        return false;
      }
      this.bytes[this.length] = DIGIT_ZERO + digit;
      this.length += 1;
      return true;
    }

    pop() {
      if (this.length > 0) {
        this.length -= 1;
        this.bytes[this.length] = 0;
      }
    }

    clear() {
      this.bytes.fill(0);
      this.length = 0;
    }

    /* Wipe and forget the buffer (it is not used again). */
    dispose() {
      this.clear();
      live.delete(this.bytes);
    }

    view() {
      return this.bytes.subarray(0, this.length);
    }

    /* Equal contents, compared without an early exit. */
    sameAs(other) {
      let diff = this.length ^ other.length;
      const n = Math.max(this.bytes.length, other.bytes.length);
      for (let i = 0; i < n; i += 1) {
        diff |= (this.bytes[i] || 0) ^ (other.bytes[i] || 0);
      }
      return diff === 0;
    }
  }

  function join(parts) {
    let total = 0;
    for (const part of parts) {
      total += part.length;
    }
    const out = new Uint8Array(total);
    live.add(out);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /* A JSON object as bytes: plain string fields, then PIN fields from buffers. */
  function secretJson(plain, secrets) {
    const parts = [encoder.encode("{")];
    let first = true;
    for (const [key, value] of Object.entries(plain)) {
      parts.push(encoder.encode((first ? "" : ",") + JSON.stringify(key) + ":" + JSON.stringify(value)));
      first = false;
    }
    for (const [key, buffer] of Object.entries(secrets)) {
      parts.push(encoder.encode((first ? "" : ",") + JSON.stringify(key) + ':"'));
      parts.push(buffer.view());
      parts.push(encoder.encode('"'));
      first = false;
    }
    parts.push(encoder.encode("}"));
    return join(parts);
  }

  /* PINs one per line (text/plain body of the PIN page). */
  function pinLines(buffers) {
    const parts = [];
    buffers.forEach((buffer, index) => {
      if (index > 0) {
        parts.push(encoder.encode("\n"));
      }
      parts.push(buffer.view());
    });
    return join(parts);
  }

  /* POST a body holding PINs; the body and the buffers are zeroed once fetch() has its copy. */
  function postSecret(url, body, contentType, buffers) {
    let request;
    try {
      request = fetch(url, {
        method: "POST",
        headers: { "Content-Type": contentType },
        body: body,
        cache: "no-store",
        credentials: "same-origin",
        redirect: "error",
      });
    } finally {
      body.fill(0);
      live.delete(body);
      for (const buffer of buffers) {
        buffer.clear();
      }
    }
    return request;
  }

  function residue() {
    let count = 0;
    for (const bytes of live) {
      for (const value of bytes) {
        if (value !== 0) {
          count += 1;
        }
      }
    }
    return count;
  }

  /*
   * Fill `container` with the keys 1-9, clear, 0, delete.  onKey(key) gets a
   * digit 0-9, "clear" or "back".  labels: {clear, back}.
   */
  function buildKeypad(container, labels, onKey) {
    container.textContent = "";
    const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back"];
    for (const key of keys) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = /^[0-9]$/.test(key) ? "key digit" : "key action";
      button.dataset.key = key;
      button.textContent = /^[0-9]$/.test(key) ? key : labels[key];
      button.addEventListener("click", () => {
        onKey(/^[0-9]$/.test(key) ? Number(key) : key);
      });
      container.appendChild(button);
    }
  }

  function relabel(container, labels) {
    for (const button of container.querySelectorAll("button.action")) {
      button.textContent = labels[button.dataset.key];
    }
  }

  /* Dots for the typed digits and empty places up to `places`. */
  function renderDots(element, buffer, places) {
    element.textContent = "";
    const count = Math.max(places, buffer.length);
    for (let i = 0; i < count; i += 1) {
      const dot = document.createElement("span");
      dot.className = i < buffer.length ? "dot filled" : "dot";
      element.appendChild(dot);
    }
    element.dataset.count = String(buffer.length);
  }

  window.SscardKeypad = Object.freeze({
    PinBuffer: PinBuffer,
    buildKeypad: buildKeypad,
    relabel: relabel,
    renderDots: renderDots,
    secretJson: secretJson,
    pinLines: pinLines,
    postSecret: postSecret,
    residue: residue,
  });
})();
