/*
 * Kiosk page of the sscard local service (/kiosk/).
 *
 * Screens: start (insert card) -> busy (reading) -> info (masked holder data
 * and the menu) -> pin (on-screen keypad) / confirm (loss report) / status ->
 * message.  The page talks only to its own /kiosk/api/* endpoints; it waits
 * for the card with long polls of /kiosk/api/card.  PINs are typed into
 * SscardKeypad buffers and leave them only as the body of one POST, after
 * which the buffers are zeroed.  Inactivity returns to the start page and
 * forgets everything (card reference, masked data, typed digits, language).
 */
"use strict";

(function () {
  const KP = window.SscardKeypad;
  const PG = window.SscardPage;
  const USABLE_STATES = ["personalised", "active"];
  const REMOVED_ERRORS = ["card_removed", "no_card", "card_wait_timeout"];
  const END_ERRORS = ["wrong_card_type", "card_data_mismatch"];
  const STEP_TITLES = {
    verify: "pin_title_verify",
    old: "pin_title_old",
    new: "pin_title_new",
    again: "pin_title_again",
    block: "pin_title_block",
  };
  const FLOW_STEPS = { verify: ["verify"], change: ["old", "new", "again"], block: ["block"] };
  const SESSION_FIELDS = [
    "info-name", "info-ssn", "info-card-number", "info-generation", "info-pin", "info-life-cycle",
    "status-life-cycle", "status-pin", "status-generation", "status-profile",
  ];
  const IDLE_TICK_MS = 250;
  const IDLE_WARN_MAX_MS = 10000;
  const RETRY_SETTINGS_MS = 3000;

  const state = {
    settings: null,
    lang: "zh",
    screen: "loading",
    session: null,
    status: null,
    flow: null,
    gen: 0,
    busy: 0,
    busyKey: "reading",
    lastActivity: Date.now(),
    cardPresent: false,
    message: null,
    messageTimer: null,
  };

  const { $, sleep, format } = PG;

  // -- texts -------------------------------------------------------------------------------

  const t = PG.translator(state);

  function lifeCycleText(label) {
    const row = state.settings.life_cycle[label];
    return row ? row[state.lang] : label;
  }

  function digitsText() {
    const digits = state.session ? state.session.pin_digits : { min: 6, max: 6 };
    return digits.min === digits.max ? String(digits.max) : digits.min + "-" + digits.max;
  }

  function pinText(pin) {
    return t("pin_state_" + pin.state) + " · " + t("retries_value", { n: pin.retries_left });
  }

  function errorText(error) {
    const body = error.body || {};
    let id = error.id;
    if (id === "pin_wrong" && body.retries_left === 0) {
      id = "pin_blocked";
    }
    if (id === "offline") {
      return t("offline");
    }
    const row = state.settings.errors[id];
    const params = {
      retries: body.retries_left,
      seconds: Math.max(1, Math.ceil(Number(body.retry_after) || 1)),
      digits: digitsText(),
      reason: body.message || "",
    };
    if (row) {
      return format(row[state.lang], params);
    }
    const fallback = state.lang === "zh" ? body.message : body.message_en;
    return fallback || t("error_title");
  }

  function applyTexts() {
    PG.applyCommonTexts(state, t);
    renderInfo();
    renderPin();
    renderStatus();
    renderMessage();
    $("busy-text").textContent = t(state.busyKey);
  }

  // -- screens --------------------------------------------------------------------------------

  function show(screen) {
    state.screen = screen;
    document.body.dataset.screen = screen;
    for (const element of document.querySelectorAll(".screen")) {
      element.hidden = element.id !== "screen-" + screen;
    }
    if (screen !== "message") {
      clearTimeout(state.messageTimer);
      state.messageTimer = null;
    }
  }

  function showBusy(key) {
    state.busyKey = key;
    $("busy-text").textContent = t(key);
    show("busy");
  }

  /* A card left in the reader is to be taken first; otherwise the insert prompt. */
  function renderStart() {
    $("take-card").hidden = !state.cardPresent;
    $("insert-prompt").hidden = state.cardPresent;
  }

  function renderInfo() {
    const session = state.session;
    if (!session) {
      return;
    }
    $("info-name").textContent = session.name_masked || "—";
    $("info-ssn").textContent = session.ssn_masked || "—";
    $("info-card-number").textContent = session.card_number;
    $("info-generation").textContent = t("generation_value", { n: session.generation });
    $("info-pin").textContent = pinText(session.pin);
    $("info-life-cycle").textContent = lifeCycleText(session.life_cycle);
    const usable = USABLE_STATES.includes(session.life_cycle);
    const pinUsable = session.pin.state !== "blocked";
    let notice = null;
    if (session.life_cycle === "temporarily_blocked") {
      notice = t("notice_app_blocked");
    } else if (!usable) {
      notice = errorText({ id: "application_permanently_blocked", body: {} });
    } else if (!pinUsable) {
      notice = t("notice_pin_blocked");
    } else if (session.pin.state === "initial") {
      notice = t("notice_initial");
    }
    $("info-notice").hidden = notice === null;
    $("info-notice").textContent = notice || "";
    $("menu-verify").disabled = !(usable && pinUsable);
    $("menu-change").disabled = !(usable && pinUsable);
    $("menu-block").disabled = !(usable && pinUsable);
  }

  function showInfo() {
    disposeFlow();
    renderInfo();
    show("info");
  }

  function renderPin() {
    const flow = state.flow;
    if (!flow || !state.session) {
      return;
    }
    const step = flow.steps[flow.index];
    const buffer = flow.buffers[flow.index];
    $("pin-title").textContent = t(STEP_TITLES[step]);
    $("pin-hint").textContent = t("pin_hint", { digits: digitsText() });
    $("pin-problem").hidden = !flow.problem;
    $("pin-problem").textContent = flow.problem ? t(flow.problem) : "";
    KP.renderDots($("pin-dots"), buffer, state.session.pin_digits.max);
    $("pin-ok").disabled = buffer.length < state.session.pin_digits.min;
    document.body.dataset.step = step;
  }

  function renderStatus() {
    const status = state.status;
    if (!status) {
      return;
    }
    $("status-life-cycle").textContent = lifeCycleText(status.life_cycle);
    $("status-pin").textContent = pinText(status.pin);
    $("status-generation").textContent = t("generation_value", { n: status.generation });
    $("status-profile").textContent = status.profile_version;
  }

  function renderMessage() {
    const message = state.message;
    if (!message) {
      return;
    }
    $("message-icon").className = "icon " + message.kind;
    $("message-title").textContent = t(message.title);
    $("message-text").textContent = message.error ? errorText(message.error) : t(message.text || "");
    $("message-retry").hidden = !message.retry;
    $("message-back").textContent = message.after === "start" ? t("home") : t("back");
    document.body.dataset.message = message.error ? message.error.id : message.text || message.title;
  }

  function showMessage(message) {
    state.message = message;
    renderMessage();
    show("message");
    if (message.after === "start") {
      state.messageTimer = setTimeout(goStart, state.settings.message_ms);
    }
  }

  // -- session ------------------------------------------------------------------------------------

  function disposeFlow() {
    if (state.flow) {
      for (const buffer of state.flow.buffers) {
        buffer.dispose();
      }
      state.flow = null;
    }
    KP.renderDots($("pin-dots"), { length: 0 }, 0);
    delete document.body.dataset.step;
  }

  function endSession() {
    state.gen += 1;
    state.session = null;
    state.status = null;
    disposeFlow();
    for (const id of SESSION_FIELDS) {
      $(id).textContent = "";
    }
    $("info-notice").textContent = "";
  }

  function goStart() {
    endSession();
    state.message = null;
    delete document.body.dataset.message;
    state.lang = "zh";
    applyTexts();
    show("start");
    renderStart();
  }

  function cardRemoved() {
    endSession();
    state.cardPresent = false;
    showMessage({ kind: "error", title: "removed_title", text: "removed_text", after: "start" });
  }

  function failed(error, retryKind) {
    if (REMOVED_ERRORS.includes(error.id)) {
      cardRemoved();
      return;
    }
    if (!state.session || END_ERRORS.includes(error.id)) {
      endSession();
      showMessage({ kind: "error", title: "error_title", error: error, after: "start" });
      return;
    }
    const body = error.body || {};
    const session = state.session;
    let retry = false;
    if (error.id === "pin_blocked" || (error.id === "pin_wrong" && body.retries_left === 0)) {
      session.pin = { state: "blocked", retries_left: 0, max_tries: session.pin.max_tries };
    } else if (error.id === "pin_wrong") {
      session.pin = { state: session.pin.state, retries_left: body.retries_left, max_tries: session.pin.max_tries };
      retry = Boolean(retryKind);
    } else if (["pin_length", "pin_mismatch", "initial_pin_reuse", "illegal_characters"].includes(error.id)) {
      retry = Boolean(retryKind);
    }
    disposeFlow();
    showMessage({ kind: "error", title: "error_title", error: error, after: "info", retry: retry, retryKind: retryKind });
  }

  // -- talking to the service -----------------------------------------------------------------

  class KioskError extends Error {
    constructor(body, status) {
      const id = body && body.error ? body.error : status ? "http_" + status : "offline";
      super(id);
      this.id = id;
      this.body = body || {};
      this.status = status;
    }
  }

  async function exchange(send, background) {
    if (!background) {
      state.busy += 1;
    }
    try {
      let response;
      try {
        response = await send();
      } catch (problem) {
        throw new KioskError({ error: "offline" }, 0);
      }
      let body = null;
      try {
        body = await response.json();
      } catch (problem) {
        body = null;
      }
      if (!response.ok) {
        throw new KioskError(body, response.status);
      }
      return body;
    } finally {
      if (!background) {
        state.busy -= 1;
        state.lastActivity = Date.now();
      }
    }
  }

  function post(path, body, background) {
    return exchange(() => fetch("/kiosk/api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      cache: "no-store",
      credentials: "same-origin",
      redirect: "error",
    }), background);
  }

  /* A POST whose body holds PINs: built from the buffers, which are all zeroed once sent. */
  function postPins(path, plain, secrets, wipeAlso) {
    return exchange(() => {
      const body = KP.secretJson(plain, secrets);
      return KP.postSecret("/kiosk/api/" + path, body, "application/json",
        Object.values(secrets).concat(wipeAlso || []));
    }, false);
  }

  // -- the card in the reader ---------------------------------------------------------------------

  function wanted() {
    switch (state.screen) {
      case "start":
        return state.cardPresent ? "absent" : "present";
      case "loading":
        return null;
      case "message":
        return state.session || state.cardPresent ? "absent" : null;
      default:
        return state.session ? "absent" : null;
    }
  }

  async function watch() {
    for (;;) {
      const want = wanted();
      if (want === null) {
        await sleep(state.settings.poll_ms);
        continue;
      }
      const gen = state.gen;
      let result;
      try {
        result = await post("card", { until: want, wait: state.settings.card_wait_seconds }, true);
      } catch (problem) {
        await sleep(state.settings.poll_ms * 2);
        continue;
      }
      const current = gen === state.gen && wanted() === want;
      state.cardPresent = Boolean(result.present);
      if (state.screen === "start") {
        renderStart();
      }
      if (!current || state.cardPresent !== (want === "present")) {
        continue;
      }
      if (state.screen === "start" && want === "present") {
        readCard();
      } else if (state.session && want === "absent") {
        cardRemoved();
      }
    }
  }

  async function readCard() {
    endSession();
    const gen = state.gen;
    showBusy("reading");
    try {
      const info = await post("read", {});
      if (gen !== state.gen) {
        return;
      }
      state.session = info;
      state.lastActivity = Date.now();
      showInfo();
    } catch (error) {
      if (gen === state.gen) {
        failed(error, null);
      }
    }
  }

  // -- flows ------------------------------------------------------------------------------------------

  function startFlow(kind) {
    disposeFlow();
    const max = state.session.pin_digits.max;
    const steps = FLOW_STEPS[kind];
    state.flow = { kind: kind, steps: steps, index: 0, buffers: steps.map(() => new KP.PinBuffer(max)), problem: null };
    renderPin();
    show("pin");
  }

  function onKey(key) {
    const flow = state.flow;
    if (!flow || state.screen !== "pin") {
      return;
    }
    PG.editBuffer(flow.buffers[flow.index], key);
    flow.problem = null;
    renderPin();
  }

  function pinOk() {
    const flow = state.flow;
    if (!flow || state.screen !== "pin") {
      return;
    }
    const buffer = flow.buffers[flow.index];
    if (buffer.length < state.session.pin_digits.min) {
      return;
    }
    if (flow.kind === "change" && flow.index === 1 && buffer.sameAs(flow.buffers[0])) {
      buffer.clear();
      flow.problem = "same_pin";
      renderPin();
      return;
    }
    if (flow.kind === "change" && flow.index === 2 && !buffer.sameAs(flow.buffers[1])) {
      buffer.clear();
      flow.buffers[1].clear();
      flow.index = 1;
      flow.problem = "mismatch";
      renderPin();
      return;
    }
    if (flow.index < flow.steps.length - 1) {
      flow.index += 1;
      renderPin();
      return;
    }
    submitFlow(flow);
  }

  async function submitFlow(flow) {
    const gen = state.gen;
    const session = state.session;
    const plain = { card_ref: session.card_ref };
    const [first, second, third] = flow.buffers;
    showBusy("working");
    try {
      let result;
      let done;
      if (flow.kind === "verify") {
        result = await postPins("verify", plain, { pin: first });
        done = "result_verify_ok";
      } else if (flow.kind === "change") {
        result = await postPins("change", plain, { old_pin: first, new_pin: second }, [third]);
        done = "result_change_ok";
      } else {
        result = await postPins("block", plain, { pin: first });
        done = "result_block_ok";
      }
      if (gen !== state.gen) {
        return;
      }
      if (flow.kind === "block") {
        session.life_cycle = result.life_cycle || "temporarily_blocked";
      } else {
        session.pin = { state: result.state, retries_left: result.retries_left, max_tries: result.max_tries };
      }
      disposeFlow();
      showMessage({ kind: "ok", title: done, text: null, after: "info" });
    } catch (error) {
      if (gen === state.gen) {
        failed(error, flow.kind);
      }
    } finally {
      for (const buffer of flow.buffers) {
        buffer.dispose();
      }
    }
  }

  async function queryStatus() {
    const gen = state.gen;
    showBusy("working");
    try {
      const status = await post("status", { card_ref: state.session.card_ref });
      if (gen !== state.gen) {
        return;
      }
      state.status = status;
      state.session.pin = status.pin;
      state.session.life_cycle = status.life_cycle;
      renderStatus();
      show("status");
    } catch (error) {
      if (gen === state.gen) {
        failed(error, null);
      }
    }
  }

  // -- inactivity ---------------------------------------------------------------------------------------

  function touch() {
    state.lastActivity = Date.now();
  }

  function idleTick() {
    const warning = $("idle-warning");
    const passive = state.screen === "start" || state.screen === "loading";
    if (passive || state.busy > 0) {
      state.lastActivity = Date.now();
      warning.hidden = true;
      return;
    }
    const timeout = state.settings.idle_timeout_ms;
    const left = timeout - (Date.now() - state.lastActivity);
    if (left <= 0) {
      warning.hidden = true;
      goStart();
      return;
    }
    if (left <= Math.min(IDLE_WARN_MAX_MS, timeout / 3)) {
      warning.textContent = t("idle_warning", { seconds: Math.ceil(left / 1000) });
      warning.hidden = false;
    } else {
      warning.hidden = true;
    }
  }

  // -- wiring ------------------------------------------------------------------------------------------

  function wire() {
    for (const name of ["pointerdown", "touchstart", "keydown"]) {
      document.addEventListener(name, touch, { capture: true, passive: true });
    }
    PG.wireKeys(state, t, {
      active: () => state.screen === "pin",
      onKey: onKey,
      ok: pinOk,
      cancel: showInfo,
      applyTexts: applyTexts,
    });
    $("resume").addEventListener("click", readCard);
    $("menu-verify").addEventListener("click", () => startFlow("verify"));
    $("menu-change").addEventListener("click", () => startFlow("change"));
    $("menu-block").addEventListener("click", () => show("confirm"));
    $("menu-status").addEventListener("click", queryStatus);
    $("menu-exit").addEventListener("click", goStart);
    $("pin-ok").addEventListener("click", pinOk);
    $("pin-cancel").addEventListener("click", showInfo);
    $("confirm-cancel").addEventListener("click", showInfo);
    $("confirm-ok").addEventListener("click", () => startFlow("block"));
    $("status-back").addEventListener("click", showInfo);
    $("message-back").addEventListener("click", () => {
      if (state.message && state.message.after === "start") {
        goStart();
      } else {
        showInfo();
      }
    });
    $("message-retry").addEventListener("click", () => {
      if (state.message && state.message.retryKind && state.session) {
        startFlow(state.message.retryKind);
      }
    });
  }

  async function init() {
    if (!(await PG.loadSettings(state, RETRY_SETTINGS_MS, init))) {
      return;
    }
    wire();
    try {
      const now = await post("card", {}, true);
      state.cardPresent = Boolean(now.present);
    } catch (problem) {
      state.cardPresent = false;
    }
    goStart();
    setInterval(idleTick, IDLE_TICK_MS);
    watch();
  }

  init();
})();
