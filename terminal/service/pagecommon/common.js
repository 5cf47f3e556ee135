/*
 * Shared by the kiosk (/kiosk/) and the PIN page (/pin/) of the sscard local
 * service: texts in two languages, the keypad's keys and the keyboard, the
 * language button and loading settings.json.  Loaded after keypad.js and
 * before the page's own script; exposes window.SscardPage.
 */
"use strict";

(function () {
  const KP = window.SscardKeypad;
  const UNREACHABLE = "无法连接本机社保卡服务 / The local card service cannot be reached";

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function format(text, params) {
    return String(text).replace(/\{(\w+)\}/g, (whole, key) =>
      params && params[key] !== undefined && params[key] !== null ? String(params[key]) : whole);
  }

  // t(key, params) of a page whose state holds settings.texts and lang.
  function translator(state) {
    return function t(key, params) {
      const table = state.settings.texts[state.lang];
      return format(key in table ? table[key] : key, params);
    };
  }

  // The language, every [data-t] element, the title and the keypad labels.
  function applyCommonTexts(state, t) {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.body.dataset.lang = state.lang;
    for (const element of document.querySelectorAll("[data-t]")) {
      element.textContent = t(element.dataset.t);
    }
    document.title = t("title");
    KP.relabel($("keypad"), { clear: t("key_clear"), back: t("key_back") });
  }

  // One keypad key applied to a PIN buffer: a digit, "clear" or "back".
  function editBuffer(buffer, key) {
    if (key === "clear") {
      buffer.clear();
    } else if (key === "back") {
      buffer.pop();
    } else {
      buffer.push(key);
    }
  }

  // The keypad, the hardware keyboard (digits, Backspace, Enter = ok, Escape = cancel)
  // while active() says the keypad is on screen, and the language button.
  function wireKeys(state, t, handlers) {
    KP.buildKeypad($("keypad"), { clear: t("key_clear"), back: t("key_back") }, handlers.onKey);
    document.addEventListener("keydown", (event) => {
      if (!handlers.active()) {
        return;
      }
      if (/^[0-9]$/.test(event.key)) {
        handlers.onKey(Number(event.key));
      } else if (event.key === "Backspace") {
        handlers.onKey("back");
      } else if (event.key === "Enter") {
        handlers.ok();
      } else if (event.key === "Escape") {
        handlers.cancel();
      } else {
        return;
      }
      event.preventDefault();
    });
    $("lang").addEventListener("click", () => {
      state.lang = state.lang === "zh" ? "en" : "zh";
      handlers.applyTexts();
    });
  }

  // settings.json into state.settings; true when loaded, else the loading text says
  // the service cannot be reached and retry() runs again after retryMs.
  async function loadSettings(state, retryMs, retry) {
    try {
      const response = await fetch("settings.json", { cache: "no-store" });
      if (!response.ok) {
        throw new Error("settings " + response.status);
      }
      state.settings = await response.json();
      return true;
    } catch (problem) {
      $("loading-text").textContent = UNREACHABLE;
      setTimeout(retry, retryMs);
      return false;
    }
  }

  window.SscardPage = Object.freeze({
    $: $,
    sleep: sleep,
    format: format,
    translator: translator,
    applyCommonTexts: applyCommonTexts,
    editBuffer: editBuffer,
    wireKeys: wireKeys,
    loadSettings: loadSettings,
  });
})();
