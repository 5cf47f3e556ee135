/*
 * PIN page of the sscard local service (/pin/), open on the customer-facing
 * screen.  It long-polls /pin/api/pending; when a card operation waits for the
 * holder's service password (national iVerifyPIN / iChangePIN, or a native
 * request without a PIN) it shows the keypad, posts the PIN(s) as a text/plain
 * body (one per line) to /pin/api/entries/{id}, zeroes its buffers and shows
 * the operation's outcome.  The counter application that started the
 * operation never sees this page or the PIN.
 */
"use strict";

(function () {
  const KP = window.SscardKeypad;
  const PG = window.SscardPage;
  const STEP_TEXT = { pin: "step_pin", old: "step_old", new: "step_new", again: "step_again" };
  const RETRY_MS = 1000;
  const TICK_MS = 500;

  const state = {
    settings: null,
    lang: "zh",
    phase: "loading",
    entry: null,
    index: 0,
    buffers: [],
    problem: null,
    expiresAt: 0,
    lastEntries: [],
    handled: new Set(),
    result: null,
    resultTimer: null,
  };

  const { $, sleep } = PG;
  const t = PG.translator(state);

  function errorText(id) {
    const row = id ? state.settings.errors[id] : null;
    return row ? row[state.lang] : t("result_failed");
  }

  function setPhase(phase) {
    state.phase = phase;
    document.body.dataset.phase = phase;
    for (const element of document.querySelectorAll(".phase")) {
      element.hidden = element.id !== "phase-" + phase;
    }
  }

  function applyTexts() {
    PG.applyCommonTexts(state, t);
    renderEntry();
    renderResult();
  }

  // -- the entry on screen -------------------------------------------------------------------------

  function disposeBuffers() {
    for (const buffer of state.buffers) {
      buffer.dispose();
    }
    state.buffers = [];
  }

  function renderEntry() {
    const entry = state.entry;
    if (!entry) {
      return;
    }
    const step = entry.steps[state.index];
    const buffer = state.buffers[state.index];
    const low = state.settings.min_digits;
    const high = state.settings.max_digits;
    $("entry-kind").textContent = t("kind_" + entry.kind);
    $("entry-title").textContent = t(STEP_TEXT[step]);
    $("entry-hint").textContent = low === high ? t("digits_hint_fixed", { max: high }) : t("digits_hint", { min: low, max: high });
    $("entry-problem").hidden = !state.problem;
    $("entry-problem").textContent = state.problem ? t(state.problem) : "";
    KP.renderDots($("entry-dots"), buffer, low);
    $("entry-ok").disabled = buffer.length < low;
    renderMeta();
    document.body.dataset.step = step;
  }

  function renderMeta() {
    if (!state.entry) {
      return;
    }
    const seconds = Math.max(0, Math.ceil((state.expiresAt - Date.now()) / 1000));
    $("entry-meta").textContent = t("reader", { reader: state.entry.reader }) + " · " + t("expires", { seconds: seconds });
  }

  function takeEntry(entry) {
    disposeBuffers();
    state.entry = entry;
    state.index = 0;
    state.problem = null;
    state.expiresAt = Date.now() + entry.expires_in * 1000;
    state.buffers = entry.steps.map(() => new KP.PinBuffer(state.settings.max_digits));
    renderEntry();
    setPhase("entry");
  }

  function dropEntry() {
    disposeBuffers();
    state.entry = null;
    delete document.body.dataset.step;
  }

  function showResult(kind, text) {
    state.result = { kind: kind, text: text };
    renderResult();
    setPhase("result");
    clearTimeout(state.resultTimer);
    state.resultTimer = setTimeout(backToIdle, state.settings.result_ms);
  }

  function renderResult() {
    const result = state.result;
    if (!result) {
      return;
    }
    $("result-icon").className = "icon " + result.kind;
    $("result-text").textContent = typeof result.text === "function" ? result.text() : result.text;
  }

  function backToIdle() {
    state.result = null;
    state.lang = "zh";
    applyTexts();
    setPhase("idle");
    pickNext();
  }

  /* A waiting request is shown at once, also over the previous outcome. */
  function pickNext() {
    if (state.phase !== "idle" && state.phase !== "result") {
      return;
    }
    const next = state.lastEntries.find((entry) => !state.handled.has(entry.id));
    if (next) {
      clearTimeout(state.resultTimer);
      state.result = null;
      takeEntry(next);
    }
  }

  // -- talking to the service -------------------------------------------------------------------------

  async function postJson(path, body) {
    const response = await fetch("/pin/api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
      redirect: "error",
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(data && data.error ? data.error : "http_" + response.status);
    }
    return data;
  }

  function onPending(entries) {
    state.lastEntries = entries;
    const ids = new Set(entries.map((entry) => entry.id));
    for (const id of Array.from(state.handled)) {
      if (!ids.has(id)) {
        state.handled.delete(id);
      }
    }
    if (state.phase === "entry" && state.entry && !ids.has(state.entry.id)) {
      const expired = Date.now() >= state.expiresAt - TICK_MS;
      dropEntry();
      showResult("error", () => (expired ? errorText("pin_entry_timeout") : t("cancelled")));
      return;
    }
    pickNext();
  }

  async function poll() {
    for (;;) {
      let data;
      try {
        data = await postJson("pending", {
          wait: state.settings.pending_wait_seconds,
          known: state.lastEntries.map((entry) => entry.id),
        });
      } catch (problem) {
        await sleep(RETRY_MS);
        continue;
      }
      onPending(data.entries);
    }
  }

  async function submit() {
    const entry = state.entry;
    state.handled.add(entry.id);
    const body = KP.pinLines(state.buffers);
    const buffers = state.buffers;
    setPhase("working");
    let data = null;
    let failure = null;
    try {
      const response = await KP.postSecret(
        "/pin/api/entries/" + encodeURIComponent(entry.id), body, "text/plain;charset=utf-8", buffers);
      data = await response.json().catch(() => null);
      if (!response.ok) {
        failure = data && data.error ? data.error : "result_failed";
      }
    } catch (problem) {
      failure = "result_failed";
    } finally {
      dropEntry();
    }
    if (failure !== null) {
      const id = failure === "not_found" ? "pin_entry_timeout" : failure;
      showResult("error", () => errorText(id));
      return;
    }
    const outcome = data.outcome || {};
    if (outcome.ok === true) {
      showResult("ok", () => t(entry.kind === "change" ? "result_change_ok" : "result_verify_ok"));
    } else if (outcome.ok === false) {
      showResult("error", () => errorText(outcome.error));
    } else {
      showResult("ok", () => t("result_unknown"));
    }
  }

  async function cancel() {
    const entry = state.entry;
    if (!entry) {
      return;
    }
    state.handled.add(entry.id);
    dropEntry();
    try {
      await postJson("entries/" + encodeURIComponent(entry.id) + "/cancel", {});
    } catch (problem) {
      // The request is gone already (timed out): nothing left to cancel.
    }
    showResult("error", () => t("cancelled"));
  }

  // -- keypad ---------------------------------------------------------------------------------------------

  function onKey(key) {
    if (state.phase !== "entry") {
      return;
    }
    PG.editBuffer(state.buffers[state.index], key);
    state.problem = null;
    renderEntry();
  }

  function ok() {
    if (state.phase !== "entry") {
      return;
    }
    const steps = state.entry.steps;
    const buffer = state.buffers[state.index];
    if (buffer.length < state.settings.min_digits) {
      state.problem = "too_short";
      renderEntry();
      return;
    }
    if (steps[state.index] === "again" && !buffer.sameAs(state.buffers[state.index - 1])) {
      buffer.clear();
      state.buffers[state.index - 1].clear();
      state.index -= 1;
      state.problem = "mismatch";
      renderEntry();
      return;
    }
    if (state.index < steps.length - 1) {
      state.index += 1;
      renderEntry();
      return;
    }
    submit();
  }

  function wire() {
    PG.wireKeys(state, t, {
      active: () => state.phase === "entry",
      onKey: onKey,
      ok: ok,
      cancel: cancel,
      applyTexts: applyTexts,
    });
    $("entry-ok").addEventListener("click", ok);
    $("entry-cancel").addEventListener("click", cancel);
    setInterval(renderMeta, TICK_MS);
  }

  async function init() {
    if (!(await PG.loadSettings(state, RETRY_MS * 3, init))) {
      return;
    }
    wire();
    applyTexts();
    setPhase("idle");
    poll();
  }

  init();
})();
