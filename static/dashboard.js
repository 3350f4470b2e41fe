// The operator dashboard (/node): Chart.js charts of payments, volume and liquidity, and the
// totals and tables, refreshed from the snapshots the server pushes over Socket.IO
// (namespace /node). The page shows the same numbers without JavaScript, only not live.
(function () {
  "use strict";

  const COLORS = ["#3b4cca", "#12b76a", "#f04438", "#f79009", "#7a5af8"];

  // The node's assets ({address: {symbol, decimals}}, from the snapshot). Tables show exact
  // amounts in each asset's own decimals; charts draw whole units (a float is fine there).
  let assetInfo = {};

  function known(asset) {
    return assetInfo[asset] || null;
  }

  function human(asset, value) {
    const info = known(asset);
    return Number(BigInt(value)) / 10 ** (info ? info.decimals : 0);
  }

  function exact(value, decimals) {
    const digits = BigInt(value).toString();
    if (!decimals) return digits;
    const padded = digits.padStart(decimals + 1, "0");
    const whole = padded.slice(0, padded.length - decimals);
    const frac = padded.slice(padded.length - decimals).replace(/0+$/, "");
    return frac ? whole + "." + frac : whole;
  }

  function name(asset) {
    const info = known(asset);
    return info ? info.symbol : asset.slice(0, 10) + "…";
  }

  function label(asset, value) {
    const info = known(asset);
    return info ? exact(value, info.decimals) + " " + info.symbol : value + " base units";
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.append(td);
  }

  function rows(body, items, columns, empty) {
    body.replaceChildren();
    if (!items.length) {
      const row = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = columns(null).length;
      td.textContent = empty;
      row.append(td);
      body.append(row);
      return;
    }
    for (const item of items) {
      const row = document.createElement("tr");
      for (const [text, className] of columns(item)) cell(row, text, className);
      body.append(row);
    }
  }

  function chart(id, type, stacked) {
    const canvas = document.getElementById(id);
    return new window.Chart(canvas, {
      type: type,
      data: { labels: [], datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
      },
    });
  }

  function start(root) {
    const field = (name) => root.querySelector('[data-field="' + name + '"]');
    const payments = chart("payments-chart", "bar", true);
    const volume = chart("volume-chart", "line", false);
    const liquidity = chart("liquidity-chart", "bar", false);

    function render(snapshot) {
      const summary = snapshot.summary;
      assetInfo = snapshot.assets || {};
      const minutes = snapshot.timeline;
      const labels = minutes.map((m) => m.minute.slice(11, 16));
      payments.data.labels = labels;
      payments.data.datasets = [
        { label: "resolved", data: minutes.map((m) => m.resolved), backgroundColor: COLORS[1] },
        { label: "failed or refunded", data: minutes.map((m) => m.failed),
          backgroundColor: COLORS[2] },
      ];
      payments.update();
      const assets = [...new Set(minutes.flatMap((m) => Object.keys(m.volume)))];
      volume.data.labels = labels;
      volume.data.datasets = assets.map((asset, i) => ({
        label: name(asset),
        data: minutes.map((m) => human(asset, m.volume[asset] || "0")),
        borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
      }));
      volume.update();
      liquidity.data.labels = summary.liquidity.map((l) => name(l.assetId));
      liquidity.data.datasets = [
        { label: "on chain", backgroundColor: COLORS[0],
          data: summary.liquidity.map((l) => human(l.assetId, l.onChain)) },
        { label: "in channels", backgroundColor: COLORS[3],
          data: summary.liquidity.map((l) => human(l.assetId, l.inChannels)) },
      ];
      liquidity.update();

      field("channels").textContent = String(summary.channels);
      field("payments").textContent = String(summary.payments.total);
      field("resolved").textContent = String(summary.payments.byStatus.resolved || 0);
      const list = field("volume");
      list.replaceChildren();
      for (const entry of summary.volume24h) {
        const item = document.createElement("li");
        item.textContent = label(entry.assetId, entry.amount) + " in " + entry.payments +
          " payments";
        list.append(item);
      }
      if (!summary.volume24h.length) {
        const item = document.createElement("li");
        item.textContent = "none yet";
        list.append(item);
      }
      field("low-liquidity").hidden = !summary.lowLiquidity.length;
      field("low-assets").textContent = summary.lowLiquidity.join(", ");
      rows(field("liquidity"), summary.liquidity, (l) => l ? [
        [l.assetId, "mono"], [label(l.assetId, l.onChain)], [label(l.assetId, l.inChannels)],
        [String(l.channels)], [l.low ? "low" : ""]] : [1, 2, 3, 4, 5], "none");
      rows(field("collateral"), snapshot.collateral, (t) => t ? [
        [t.at.slice(11, 19)], [t.kind], [t.channelAddress || "", "mono"],
        [label(t.assetId, t.amount)]] : [1, 2, 3, 4], "none yet");
      rows(field("failures"), snapshot.failures, (p) => p ? [
        [p.createdAt.slice(11, 19)], [label(p.assetId, p.amount)], [p.error || ""]]
        : [1, 2, 3], "none");
      field("updated").textContent = "updated " + new Date().toLocaleTimeString();
      root.dataset.rendered = String(Number(root.dataset.rendered || "0") + 1);
    }

    fetch(root.dataset.dataUrl, { credentials: "same-origin" })
      .then((response) => response.ok ? response.json() : null)
      .then((snapshot) => { if (snapshot) render(snapshot); });
    if (window.io) {
      const socket = window.io("/node");
      socket.on("connect", () => { root.dataset.live = "on"; });
      socket.on("disconnect", () => { root.dataset.live = "off"; });
      socket.on("snapshot", render);
    }
  }

  function init() {
    const root = document.getElementById("node-dashboard");
    if (root && window.Chart && !root.dataset.started) {
      root.dataset.started = "1";
      start(root);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
