// The wallet's only JavaScript: live events from the server (Socket.IO) refresh the parts of
// the page that show balances and activity (htmx re-fetches them), plus small conveniences.
// Everything works without it, only less live.
(function () {
  "use strict";

  const MESSAGES = {
    "transfer.received": "Payment received",
    "transfer.completed": "Payment delivered",
    "transfer.cancelled": "Payment refunded",
    "deposit.reconciled": "Deposit confirmed",
    "withdrawal.confirmed": "Cash out confirmed on chain",
    "withdrawal.failed": "Cash out failed: funds are back in your balance",
    "stream.opened": "A stream to you opened",
  };

  // Notifications live in the header bar, never over the page: the newest one shows (a
  // repeat of the same message counts up instead of stacking), older ones go.
  const TOASTS_SHOWN = 2;
  function toast(text) {
    const box = document.getElementById("toasts");
    if (!box) return;
    let item = Array.from(box.children).find((el) => el.dataset.text === text);
    if (item) {
      item.dataset.count = String(Number(item.dataset.count || "1") + 1);
      item.textContent = text + " \u00d7" + item.dataset.count;
      clearTimeout(Number(item.dataset.timer));
      box.prepend(item);
    } else {
      item = document.createElement("p");
      item.className = "toast";
      item.dataset.text = text;
      item.textContent = text;
      box.prepend(item);
    }
    while (box.children.length > TOASTS_SHOWN) box.lastElementChild.remove();
    const shown = item;
    shown.dataset.timer = String(setTimeout(() => shown.remove(), 5000));
  }

  function settleProgress(event) {
    document.querySelectorAll('[data-waiting="' + event + '"]').forEach((el) => {
      el.removeAttribute("data-waiting");
      el.classList.add("done");
      el.querySelectorAll(".spinner").forEach((s) => s.classList.remove("on"));
      el.querySelectorAll(".done-text").forEach((s) => (s.hidden = false));
    });
  }

  // An event can arrive while a page request is in flight whose response (rendered before
  // the event) then replaces the page: refresh once more after such a swap, so nothing stale
  // stays on screen; and a progress box rendered after its event arrived settles at once.
  let lastEventAt = 0;
  const pageRequests = new WeakMap();
  const seen = {};

  // A burst of events (a stream's vouchers arrive in hundreds a second) refreshes the page
  // at most ten times a second, always once after the last event.
  const REFRESH_MS = 100;
  let refreshTimer = null;
  let lastRefresh = 0;
  function refresh() {
    if (!window.htmx || refreshTimer !== null) return;
    const wait = Math.max(0, lastRefresh + REFRESH_MS - Date.now());
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      lastRefresh = Date.now();
      htmx.trigger(document.body, "wallet-changed");
    }, wait);
  }

  // A new co-signed state's event carries the balances it leaves (as the page shows them):
  // this wallet's balances section takes them at once, before its refresh comes back. The
  // nonce orders them: neither an older event nor an older rendering replaces a newer state.
  function shownNonce(root) {
    const el = root && root.querySelector('[data-testid="nonce"]');
    return el ? Number(el.textContent) : NaN;
  }
  function showBalances(event) {
    const section = document.getElementById("balances");
    if (!section || !event.balances || event.address !== document.body.dataset.address) return;
    if (!(Number(event.nonce) > shownNonce(section))) return;
    Object.entries(event.balances).forEach(([symbol, text]) => {
      const el = section.querySelector('[data-testid="balance-' + symbol + '"]');
      if (el) el.textContent = text;
    });
    section.querySelector('[data-testid="nonce"]').textContent = String(event.nonce);
  }

  let socket = null;
  function connect() {
    if (typeof io === "undefined") return;
    if (socket) socket.disconnect();
    socket = io({ transports: ["websocket", "polling"] });
    socket.on("wallet", (event) => {
      const text = MESSAGES[event.event];
      if (text) toast(text);
      lastEventAt = seen[event.event] = Date.now();
      settleProgress(event.event);
      showBalances(event);
      document.body.dataset.lastEvent = event.event;
      refresh();
    });
    // what happened between the page's rendering and the socket joining its wallet's room
    // (or while it was disconnected) came with no event: refresh once on every connect
    socket.on("connect", () => {
      document.body.dataset.live = "on";
      refresh();
    });
    socket.on("disconnect", () => (document.body.dataset.live = "off"));
  }

  function fillFromHash(root) {
    root.querySelectorAll("input[data-from-hash]").forEach((input) => {
      if (!input.value && location.hash.length > 1) input.value = location.hash.slice(1);
    });
  }

  // Scanning a QR code (an address or a request link) where the browser can detect barcodes.
  function enableScanning(root) {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    root.querySelectorAll("button[data-scan]").forEach((button) => {
      if (button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      button.addEventListener("click", async () => {
        const input = document.getElementById(button.dataset.scan);
        const video = button.parentElement.querySelector("video[data-scan-video]");
        try {
          const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
          video.srcObject = stream;
          video.hidden = false;
          await video.play();
          const detector = new BarcodeDetector({ formats: ["qr_code"] });
          const stop = () => { stream.getTracks().forEach((t) => t.stop()); video.hidden = true; };
          const look = async () => {
            const codes = await detector.detect(video).catch(() => []);
            if (codes.length) { input.value = codes[0].rawValue; stop(); input.focus(); }
            else if (!video.hidden) requestAnimationFrame(look);
          };
          look();
        } catch (err) {
          toast("Cannot use the camera: paste the address or link instead.");
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (window.htmx) {
      // re-render forms that failed validation (422) in place, with their messages
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "422", swap: true },
        { code: "[45]..", swap: false, error: true },
      ];
    }
    fillFromHash(document);
    enableScanning(document);
    connect();
  });

  // plain (non-htmx) forms show their progress too, and are not submitted twice
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (window.htmx && form.getAttribute("hx-boost") !== "false") return;  // htmx shows it
    if (form.classList.contains("busy")) e.preventDefault();
    else form.classList.add("busy");
  });
  window.addEventListener("pageshow", () =>
    document.querySelectorAll("form.busy").forEach((f) => f.classList.remove("busy")));

  // A live refresh never wipes what someone is typing in a section (e.g. an oracle
  // payment's outcome): a section with edited fields waits for the next event.
  function edited(root) {
    return Array.from(root.querySelectorAll("input, textarea, select")).some((el) => {
      if (el.type === "hidden") return false;
      if (el.tagName === "SELECT") return Array.from(el.options).some((o) => o.selected !== o.defaultSelected);
      if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
      return el.value !== el.defaultValue;
    });
  }
  // Nor does it wipe a form's refusal shown on its field (e.g. a bad oracle receipt): a
  // section showing one is refreshed once someone acts on it again.
  const keep = (root) => edited(root) || Boolean(root.querySelector("[data-refusal]"));
  const isRefresh = (config) =>
    Boolean(config && config.triggeringEvent && config.triggeringEvent.type === "wallet-changed");
  document.addEventListener("htmx:configRequest", (e) => {
    if (isRefresh(e.detail) && keep(e.detail.elt)) e.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", (e) => {  // typed while it was on its way
    if (isRefresh(e.detail.requestConfig) && keep(e.detail.elt)) e.detail.shouldSwap = false;
    // balances rendered before a state the page already shows from its event: not swapped
    // (the event that brought that state asks for a refresh once this request settles)
    if (e.detail.elt && e.detail.elt.id === "balances" && e.detail.xhr) {
      const rendered = /data-testid="nonce">(\d+)</.exec(e.detail.xhr.responseText || "");
      if (rendered && Number(rendered[1]) < shownNonce(e.detail.elt)) {
        e.detail.shouldSwap = false;
        refresh();
      }
    }
  });

  // A change can slip past a section: htmx drops a refresh asked for while the section's
  // request is on its way (the section it would run on is swapped out), and a section that
  // was just swapped in listens only once it settles (20 ms later). So a section that
  // settles after a change it may have missed (an event, or any "wallet-changed" since its
  // request started: counted in the capture phase, before htmx sees it) asks again.
  let changes = 0;
  document.addEventListener("wallet-changed", () => { changes += 1; }, true);
  document.addEventListener("htmx:beforeRequest", (e) => {
    pageRequests.set(e.detail.xhr, { at: Date.now(), changes });
  });
  document.addEventListener("htmx:afterSettle", (e) => {
    const started = e.detail.xhr ? pageRequests.get(e.detail.xhr) : undefined;
    if (started !== undefined && (lastEventAt >= started.at || changes > started.changes)) {
      refresh();
    }
  });

  document.addEventListener("htmx:load", (e) => {
    fillFromHash(e.target);
    if (e.target.querySelectorAll) enableScanning(e.target);
    if (e.target.querySelectorAll) {
      e.target.querySelectorAll("[data-waiting]").forEach((el) => {
        const at = seen[el.getAttribute("data-waiting")];
        if (at && Date.now() - at < 15000) settleProgress(el.getAttribute("data-waiting"));
      });
    }
    // the demo's two wallets join this browser's live rooms when the page first shows them
    if (e.target.querySelector && e.target.querySelector("[data-demo]")) connect();
  });

  // A swap quote holds until its expiry: its review counts down, and says when it is over
  // (confirming after that is refused by the node; nothing is sent).
  setInterval(() => {
    document.querySelectorAll("[data-countdown]").forEach((el) => {
      const left = Math.max(0, Number(el.getAttribute("data-countdown")) - Math.floor(Date.now() / 1000));
      el.textContent = left > 0 ? left + " s left" : "expired: review again for a fresh quote";
    });
  }, 1000);

  document.addEventListener("htmx:responseError", () => {
    toast("The wallet server did not answer; nothing was lost. Try again.");
  });
  document.addEventListener("htmx:sendError", () => {
    toast("Cannot reach the wallet server; check your connection.");
  });
})();
