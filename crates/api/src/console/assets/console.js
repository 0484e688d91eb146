// TLÁO Codex agent console: the live parts of the pages, and nothing else.
//
// Forms marked `data-confirm` (cancelling a run) ask first; without the script they
// submit at once.
//
// The dashboard and the runs list mark the blocks that change as runs progress with
// `data-refresh`; while such a page is visible it fetches itself again every few
// seconds and swaps in those blocks, unless one holds the keyboard focus.
//
// The page works without this file; with it, the log and the status follow the run as
// it happens. Events come from /console/runs/{id}/events (server-sent events; the
// browser reconnects by itself and resumes with Last-Event-ID). Log lines are added as
// text nodes, never as HTML, after removing any ANSI escape sequence and control
// character (but tab) left in them, as the server does for the lines it renders.
// When a block is replaced or hidden while it holds the keyboard focus, the focus moves
// to its counterpart in the new block, else to the page's heading, never to nowhere.
"use strict";

(function () {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) {
    return;
  }
  const log = document.getElementById("log");
  const state = document.getElementById("live-state");
  const pause = document.getElementById("log-pause");
  const statusRegion = document.getElementById("run-status");
  const artifactList = document.getElementById("live-artifacts");
  const ansi = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(\u0007|\u001b\\)?|\u001b./g;
  // C0 controls but tab (and newline, which cannot occur in a line), DEL and C1.
  const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
  const labels = {
    queued: ["◷", "queued"],
    running: ["●", "running"],
    completed: ["✓", "completed"],
    failed: ["✕", "failed"],
    timed_out: ["⏱", "timed out"],
    cancelled: ["⊘", "cancelled"],
  };
  let following = true;
  const durationCell = document.getElementById("run-duration");
  let ticking = null;

  // The running time, in the server's words (12 s, 3 min 05 s, 2 h 04 min).
  function showDuration() {
    const started = Number(durationCell.dataset.started);
    const seconds = Math.max(0, Math.floor((Date.now() - started) / 1000));
    const pad = function (n) { return String(n).padStart(2, "0"); };
    durationCell.textContent = seconds < 60 ? seconds + " s"
      : seconds < 3600 ? Math.floor(seconds / 60) + " min " + pad(seconds % 60) + " s"
        : Math.floor(seconds / 3600) + " h " + pad(Math.floor((seconds % 3600) / 60)) + " min";
  }
  if (durationCell && durationCell.dataset.started) {
    ticking = window.setInterval(showDuration, 1000);
  }

  function say(text) {
    if (state) {
      state.textContent = text;
    }
  }

  function clean(text) {
    return String(text).replace(ansi, "").replace(controls, "");
  }

  const focusable = "a[href], button, input, select, textarea, [tabindex]";

  // Moves the focus to `target`, or to the page's heading when there is none.
  function focusOn(target) {
    const heading = document.querySelector("main h1");
    const element = target || heading;
    if (!element) {
      return;
    }
    if (!element.matches(focusable)) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }

  // The focused element's counterpart in `fresh` (same tag and text), if any.
  function counterpart(fresh, focused) {
    const candidates = fresh.querySelectorAll(focused.tagName);
    for (let i = 0; i < candidates.length; i += 1) {
      if (candidates[i].textContent === focused.textContent && candidates[i].matches(focusable)) {
        return candidates[i];
      }
    }
    return null;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function append(text, kind) {
    const line = document.createElement("span");
    line.className = "line " + kind;
    line.textContent = clean(text) + "\n";
    log.appendChild(line);
    if (following) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function setFollowing(on) {
    following = on;
    if (pause) {
      pause.setAttribute("aria-pressed", on ? "false" : "true");
      pause.textContent = on ? "Pause auto-scroll" : "Resume auto-scroll";
    }
    if (on) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function showStatus(status) {
    const badge = statusRegion && statusRegion.querySelector(".badge");
    const label = labels[status];
    if (!badge || !label) {
      return;
    }
    badge.className = "badge status-" + status;
    badge.dataset.status = status;
    badge.textContent = "";
    const symbol = document.createElement("span");
    symbol.setAttribute("aria-hidden", "true");
    symbol.textContent = label[0] + " ";
    badge.appendChild(symbol);
    badge.appendChild(document.createTextNode(label[1]));
  }

  function addArtifact(event) {
    if (!artifactList) {
      return;
    }
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/console/artifacts/" + encodeURIComponent(event.artifactId) + "/download";
    link.textContent = event.name;
    item.appendChild(link);
    item.appendChild(document.createTextNode(" (" + event.artifactType + ")"));
    artifactList.appendChild(item);
    artifactList.hidden = false;
  }

  // The activity section (plan, tool calls, usage so far) is rendered by the server:
  // fetched again at most once a second while the agent reports.
  let activityTimer = null;
  function refreshActivity() {
    if (activityTimer !== null) {
      return;
    }
    activityTimer = window.setTimeout(function () {
      activityTimer = null;
      swapFromServer(["run-activity"]);
    }, 1000);
  }

  // Fetches this page again and swaps in the server-rendered parts named by `ids`.
  function swapFromServer(ids, then) {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) {
          return;
        }
        const fresh = new DOMParser().parseFromString(html, "text/html");
        const focused = document.activeElement;
        let refocus = null;
        ids.forEach(function (id) {
          const mine = document.getElementById(id);
          const theirs = fresh.getElementById(id);
          if (mine && theirs) {
            const imported = document.importNode(theirs, true);
            if (focused && focused !== document.body && mine.contains(focused)) {
              refocus = { within: imported };
            }
            mine.replaceWith(imported);
          }
        });
        if (refocus) {
          focusOn(counterpart(refocus.within, focused));
        }
        if (then) {
          then();
        }
      })
      .catch(function () { /* the parts stay as they were; a reload shows them */ });
  }

  // Once the run is over, fetch this page again and swap in its facts (timing, error,
  // artifacts, actions, activity), which the server renders.
  function refreshFacts() {
    swapFromServer(["run-facts", "run-actions", "run-activity"], function () {
      // The facts now list every artifact; the live list would repeat them.
      if (artifactList) {
        artifactList.remove();
      }
    });
  }

  function data(message) {
    try {
      return JSON.parse(message.data);
    } catch (_) {
      return null;
    }
  }

  if (pause) {
    pause.hidden = false;
    pause.addEventListener("click", function () { setFollowing(!following); });
  }
  log.addEventListener("scroll", function () {
    if (following && !nearBottom()) {
      setFollowing(false);
    }
  });
  log.scrollTop = log.scrollHeight;

  const after = live.dataset.after || "0";
  const source = new EventSource(live.dataset.events + "?after=" + encodeURIComponent(after));
  say("Connecting…");
  source.addEventListener("open", function () { say("Live: following the run."); });
  source.addEventListener("log", function (message) {
    const event = data(message);
    if (event) {
      append(event.text, event.stream || "stdout");
    }
  });
  source.addEventListener("progress", function (message) {
    const event = data(message);
    if (event) {
      const percent = event.percent === undefined || event.percent === null ? "" : " (" + event.percent + "%)";
      append("▸ " + event.message + percent, "meta");
    }
  });
  source.addEventListener("status", function (message) {
    const event = data(message);
    if (event) {
      showStatus(event.status);
      append("— status: " + (labels[event.status] ? labels[event.status][1] : event.status), "meta");
    }
  });
  source.addEventListener("artifact", function (message) {
    const event = data(message);
    if (event) {
      addArtifact(event);
      append("— artifact stored: " + event.name, "meta");
    }
  });
  source.addEventListener("truncated", function (message) {
    const event = data(message);
    if (event) {
      append("— the log reached its limit of " + event.maxLogBytes + " bytes; later lines are counted, not kept", "meta");
    }
  });
  source.addEventListener("tool_call", function (message) {
    const event = data(message);
    if (event && event.call) {
      append("▸ " + event.call.title + " [" + String(event.call.status).replace("_", " ") + "]", "meta");
      refreshActivity();
    }
  });
  source.addEventListener("plan", function (message) {
    const event = data(message);
    if (event) {
      append("▸ plan: " + (event.entries || []).length + " entries", "meta");
      refreshActivity();
    }
  });
  source.addEventListener("message", function (message) {
    const event = data(message);
    if (event) {
      append(event.text, "stdout");
    }
  });
  source.addEventListener("usage", function (message) {
    const event = data(message);
    if (event && event.usage) {
      append("— usage: " + (event.usage.summary || "unmeasured"), "meta");
      refreshActivity();
    }
  });
  source.addEventListener("end", function (message) {
    source.close();
    const event = data(message);
    if (event) {
      showStatus(event.status);
    }
    say("The run is over.");
    if (ticking !== null) {
      window.clearInterval(ticking);
    }
    if (pause) {
      const hadFocus = document.activeElement === pause;
      pause.hidden = true;
      if (hadFocus) {
        focusOn(null);
      }
    }
    refreshFacts();
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped. Reload the page to see the latest state.");
    } else {
      say("Connection lost; reconnecting…");
    }
  });
})();

(function () {
  const PERIOD_MS = 5000;
  if (document.querySelectorAll("[data-refresh]").length === 0 || !window.fetch || !window.DOMParser) {
    return;
  }
  let busy = false;

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // A redirect means the session ended: leave the page as it is.
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (!html) {
          return;
        }
        const fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-refresh]").forEach(function (mine) {
          const theirs = mine.id ? fresh.getElementById(mine.id) : null;
          const focused = document.activeElement;
          if (!theirs || theirs.innerHTML === mine.innerHTML || (focused && mine.contains(focused))) {
            return;
          }
          mine.replaceWith(document.importNode(theirs, true));
        });
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, PERIOD_MS);
  document.addEventListener("visibilitychange", refresh);
})();

(function () {
  // Delegated, so forms swapped in by a refresh are covered too.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
