// Latchkey's small enhancement layer. No inline scripts anywhere: the page works under
// a strict Content-Security-Policy, and every form still posts without JavaScript.
(function () {
  "use strict";

  // Styles that only apply without script (a row menu nobody places) key off this.
  document.documentElement.classList.add("js");

  var opener = null;
  // Per dialog container (#modal, #modal-stack): what to give focus back to when its
  // dialog goes away, and the ids of that element's ancestors in case a swap replaced it.
  var returns = {};
  var TABBABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";

  function topDialog() {
    var open = document.querySelectorAll("dialog[data-modal][open]");
    return open[open.length - 1] || null;
  }

  function tabbables(root) {
    return Array.prototype.filter.call(root.querySelectorAll(TABBABLE), function (el) {
      return el.tabIndex >= 0 && el.getClientRects().length > 0;
    });
  }

  function openModals(root) {
    var dialogs = (root || document).querySelectorAll("dialog[data-modal]");
    dialogs.forEach(function (d) {
      if (!d.open && d.isConnected) {
        var box = d.parentNode;
        if (box && box.id && opener && opener.isConnected && !box.contains(opener)) {
          var ids = [];
          for (var n = opener; n && n !== document.body; n = n.parentElement) if (n.id) ids.push(n.id);
          returns[box.id] = { el: opener, ids: ids };
        }
        d.showModal();
        var auto = d.querySelector("[autofocus]");
        if (auto) auto.focus();
        // A suggested default (the new key's name) is selected: typing replaces it.
        if (auto && auto.hasAttribute("data-select-on-focus") && auto.select) auto.select();
      }
    });
    placeToasts();
  }

  // Focus goes back to what opened the dialog; if a swap replaced that element, to the
  // first control of its nearest surviving ancestor (the new row, say); else into the
  // dialog now on top.
  function returnFocus(boxId) {
    var rec = returns[boxId];
    delete returns[boxId];
    var el = null;
    if (rec && rec.el.isConnected) {
      el = rec.el;
      var menu = el.closest("details:not([open])");
      if (menu) el = menu.querySelector("summary");
    } else if (rec) {
      for (var i = 0; i < rec.ids.length && !el; i++) {
        var anc = document.getElementById(rec.ids[i]);
        // The row's own first control, not its bulk-selection checkbox.
        var items = anc ? tabbables(anc).filter(function (t) { return !t.matches("[data-bulk-row]"); }) : [];
        if (anc) el = items[0] || tabbables(anc)[0] || null;
      }
    }
    var top = topDialog();
    if (top && (!el || !top.contains(el))) el = tabbables(top)[0] || top;
    if (el) el.focus();
  }

  // Toasts must show above an open modal dialog, where the rest of the page is inert and
  // under the backdrop: while one is open they move into a live region inside it, and
  // back to #toasts before a swap could remove that dialog.
  function placeToasts() {
    var top = topDialog();
    var layer = document.getElementById("toasts");
    if (top) {
      layer = top.querySelector(":scope > .toasts");
      if (!layer) {
        layer = document.createElement("div");
        layer.className = "toasts";
        layer.setAttribute("aria-live", "polite");
        top.appendChild(layer);
      }
    }
    if (!layer) return;
    var ordered = toastsInOrder();
    var inPlace = ordered.every(function (t, i) { return layer.children[i] === t; });
    if (!inPlace) ordered.forEach(function (t) { layer.appendChild(t); });
    keepClear(layer, top);
  }

  // Toasts stay clear of what a person clicks next: the open dialog's action row and
  // close button; the row buttons, the action bar, the header's buttons, the filter and
  // Next. The stack sits top right, or in the corner where it covers fewest of them.
  var CORNERS = ["top-right", "bottom-left", "top-left", "bottom-right"];
  var CLICKABLE = ".page-buttons .btn, .key-row .btn, .key-row summary, .key-row input, .bulk-actions .btn, .bulk-bar input";
  function keepClear(layer, dialog) {
    var sel = dialog ? ".form-actions .btn, .modal-close, .modal-header .btn, " + CLICKABLE :
      CLICKABLE + ", .page-header .btn, .keys-header .btn, .filter-form input, .filter-form .btn";
    var avoid = [];
    (dialog || document).querySelectorAll(sel).forEach(function (el) {
      var b = el.getBoundingClientRect();
      // The dialog's own buttons must never be covered: they outweigh everything else.
      var r = { left: b.left, right: b.right, top: b.top, bottom: b.bottom, weight: el.closest(".form-actions, .modal-header") ? 100 : 1 };
      if (b.width && b.height && b.bottom > 0 && b.top < window.innerHeight) avoid.push(r);
    });
    var hits = function () {
      var b = layer.getBoundingClientRect();
      if (!b.height) return 0;
      return avoid.reduce(function (sum, r) {
        var apart = r.right <= b.left || r.left >= b.right || r.bottom <= b.top || r.top >= b.bottom;
        return sum + (apart ? 0 : r.weight);
      }, 0);
    };
    var best = CORNERS[0];
    var fewest = Infinity;
    for (var i = 0; i < CORNERS.length && fewest > 0; i++) {
      layer.setAttribute("data-corner", CORNERS[i]);
      var n = hits();
      if (n < fewest) { fewest = n; best = CORNERS[i]; }
    }
    layer.setAttribute("data-corner", best);
  }

  function toastsHome() {
    var home = document.getElementById("toasts");
    if (!home) return;
    toastsInOrder().forEach(function (t) { if (t.closest("dialog")) home.appendChild(t); });
  }

  function closeDialog(d) {
    if (d && d.open) d.close();
  }

  // The reveal modal cannot be dismissed with Escape until "I have saved this key".
  document.addEventListener("cancel", function (e) {
    var d = e.target;
    if (!(d instanceof HTMLDialogElement)) return;
    var ack = d.getAttribute("data-require-ack");
    if (!ack) return;
    var box = document.getElementById(ack);
    if (box && !box.checked) e.preventDefault();
  }, true);

  // A closed dialog leaves the DOM (the revealed key with it), the address bar goes
  // back to the page under it, and focus returns to what opened it.
  document.addEventListener("close", function (e) {
    var d = e.target;
    if (!(d instanceof HTMLDialogElement) || !d.hasAttribute("data-modal")) return;
    var back = d.getAttribute("data-return-url");
    if (back && location.pathname + location.search !== back) history.pushState(null, "", back);
    var box = d.parentNode;
    toastsHome();
    d.remove();
    placeToasts();
    returnFocus(box && box.id);
  }, true);

  // What the person acted on. A request nobody clicked (a table refreshing itself on
  // an event) leaves it alone.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var el = document.activeElement;
    var elt = e.detail && e.detail.elt;
    if (!elt || !elt.contains) return;
    if (el && el !== document.body && elt.contains(el)) opener = el;
    else if (!el || el === document.body) opener = elt;
  });

  // A swap that removes an open dialog (a form answering "done" closes its modal out of
  // band) fires no close event: keep its toasts and give focus back here.
  function rescueToasts(e) {
    var t = e.detail && e.detail.target;
    if (t && t.querySelector && t.querySelector("dialog [data-toast]")) toastsHome();
  }
  document.addEventListener("htmx:beforeSwap", rescueToasts);
  document.addEventListener("htmx:oobBeforeSwap", rescueToasts);
  // "+ Add network" and "×" re-render the key form, whose [autofocus] is the name
  // field: focus the new network field instead (or "+ Add network" after a removal).
  // A pasted full key never leaves the page in a URL (proxies log URLs): the filter
  // sends its key id, which finds the same key.
  var FULL_KEY = /^[a-z]{2,8}_([0-9A-Za-z]{12})_[0-9A-Za-z]+$/;
  document.addEventListener("htmx:configRequest", function (e) {
    var p = e.detail && e.detail.parameters;
    var q = p && (typeof p.get === "function" ? p.get("q") : p.q);
    var m = typeof q === "string" && q.trim().length === 64 && FULL_KEY.exec(q.trim());
    if (!m) return;
    if (typeof p.set === "function") p.set("q", m[1]); else p.q = m[1];
  });

  var listButton = null;
  document.addEventListener("htmx:configRequest", function (e) {
    var ev = e.detail && e.detail.triggeringEvent;
    var sub = ev && ev.submitter;
    listButton = sub && (sub.name === "add_cidr" || sub.name === "remove_cidr") ? sub.name : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    var form = listButton && document.getElementById("key-form");
    if (form) {
      var cidrs = form.querySelectorAll("input[name=cidr]");
      var el = listButton === "add_cidr" && cidrs.length ? cidrs[cidrs.length - 1] : form.querySelector("button[name=add_cidr]");
      if (el) el.focus();
    }
    listButton = null;
    // (A dialog not open yet is about to be: openModals opens every one it finds.)
    Object.keys(returns).forEach(function (id) {
      var box = document.getElementById(id);
      if (!box || !box.querySelector("dialog[data-modal]")) returnFocus(id);
    });
    placeToasts();
  });

  document.addEventListener("htmx:load", function (e) {
    tidyToasts();
    openModals(e.target.parentNode || document);
    scheduleToasts(e.target.parentNode || document);
    initBulk();
  });

  document.addEventListener("click", function (e) {
    // Close open row menus when clicking elsewhere or choosing an item.
    document.querySelectorAll("details.menu[open]").forEach(function (m) {
      if (!m.contains(e.target) || e.target.closest(".menu-items a")) m.removeAttribute("open");
    });
    var t = e.target.closest("[data-close-modal]");
    if (t) {
      e.preventDefault();
      closeDialog(t.closest("dialog"));
      return;
    }
    var dismiss = e.target.closest("[data-dismiss-toast]");
    if (dismiss) {
      var toast = dismiss.closest("[data-toast]");
      if (toast) toast.remove();
      placeToasts();
      return;
    }
    var copy = e.target.closest("[data-copy-target]");
    if (copy) {
      e.preventDefault();
      var field = document.getElementById(copy.getAttribute("data-copy-target"));
      if (!field) return;
      var done = function () {
        copy.textContent = "Copied";
        copy.classList.add("is-copied");
        setTimeout(function () { copy.textContent = "Copy"; copy.classList.remove("is-copied"); }, 2000);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
          document.execCommand("copy");
          done();
        });
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
    }
  });

  // Tab stays inside the open dialog: from its last control to its first and back
  // (a native modal dialog lets focus leave for the browser's own toolbar).
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Tab" || e.altKey || e.ctrlKey || e.metaKey) return;
    var d = topDialog();
    if (!d) return;
    var items = tabbables(d);
    if (!items.length) return;
    var first = items[0];
    var last = items[items.length - 1];
    var active = document.activeElement;
    if (e.shiftKey ? (active === first || !d.contains(active)) : (active === last || !d.contains(active))) {
      e.preventDefault();
      (e.shiftKey ? last : first).focus();
    }
  });

  // A row menu opens in fixed position beside its button, so no scrolling table card
  // clips it: below the button, or above it when there is no room below.
  function placeMenu(menu) {
    var items = menu.querySelector(".menu-items");
    var button = menu.querySelector("summary");
    if (!items || !button) return;
    items.classList.add("is-placed");
    var b = button.getBoundingClientRect();
    var w = items.offsetWidth;
    var h = items.offsetHeight;
    var below = b.bottom + 4;
    var top = below + h > window.innerHeight - 8 && b.top - 4 - h >= 8 ? b.top - 4 - h : below;
    items.style.top = Math.max(8, top) + "px";
    items.style.left = Math.max(8, Math.min(b.right - w, window.innerWidth - w - 8)) + "px";
  }
  document.addEventListener("toggle", function (e) {
    var menu = e.target;
    if (menu.matches && menu.matches("details.menu") && menu.open) placeMenu(menu);
  }, true);
  // A placed menu follows its button when anything scrolls or the window resizes
  // (focusing an item can scroll the table, so closing it there would lose the item).
  function placeOpenMenus() {
    document.querySelectorAll("details.menu[open]").forEach(placeMenu);
  }
  window.addEventListener("resize", placeOpenMenus);
  document.addEventListener("scroll", placeOpenMenus, true);

  // Escape closes an open row menu (dialogs handle Escape themselves).
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var open = document.querySelector("details.menu[open]");
    if (open) {
      open.removeAttribute("open");
      var s = open.querySelector("summary");
      if (s) s.focus();
      e.preventDefault();
    }
  });

  // A checkbox with data-enables="ID" enables that control only while ticked.
  document.addEventListener("change", function (e) {
    var box = e.target.closest("[data-enables]");
    if (!box) return;
    var target = document.getElementById(box.getAttribute("data-enables"));
    if (target) target.disabled = !box.checked;
  });

  // Auto-submit selects (page size) on change when JavaScript runs.
  document.addEventListener("change", function (e) {
    var sel = e.target.closest("select[data-autosubmit]");
    if (sel && sel.form) {
      if (window.htmx) { window.htmx.trigger(sel.form, "submit"); } else { sel.form.submit(); }
    }
  });

  // A file input with data-file-into="ID" (shown only when JavaScript runs) reads the
  // chosen file into that textarea: the import form posts text, never a multipart body.
  function showFilePickers(root) {
    (root || document).querySelectorAll("input[type=file][data-file-into][hidden]").forEach(function (f) {
      f.hidden = false;
    });
  }
  document.addEventListener("change", function (e) {
    var input = e.target.closest("input[type=file][data-file-into]");
    if (!input || !input.files || !input.files[0]) return;
    var area = document.getElementById(input.getAttribute("data-file-into"));
    if (!area) return;
    input.files[0].text().then(function (t) { area.value = t; area.focus(); });
  });
  document.addEventListener("htmx:load", function (e) { showFilePickers(e.target); });
  document.addEventListener("DOMContentLoaded", function () { showFilePickers(document); });

  // Bulk selection: row checkboxes, the page's header checkbox and "select all N
  // matching" (a real checkbox the server resolves from the filter). The status line is
  // a live region, so "3 selected" is announced; actions wait for a selection.
  function bulkState(form) {
    var rows = document.querySelectorAll("[data-bulk-row]");
    var picked = 0;
    rows.forEach(function (r) { if (r.checked) picked++; });
    var all = form.querySelector("[data-bulk-all]");
    var page = document.getElementById("bulk-page");
    var everything = all && all.checked;
    var count = everything ? parseInt(all.getAttribute("data-total"), 10) : picked;
    if (page) {
      page.checked = rows.length > 0 && picked === rows.length;
      page.indeterminate = picked > 0 && picked < rows.length;
    }
    form.querySelectorAll("[data-bulk-action]").forEach(function (b) { b.disabled = count === 0; });
    var status = form.querySelector("[data-bulk-status]");
    var text = count === 0 ? "No keys selected." :
      everything ? "All " + count + (all.hasAttribute("data-more") ? "+" : "") + " matching keys selected." :
      count === 1 ? "1 key selected." : count + " keys selected.";
    if (status && status.textContent !== text) status.textContent = text;
    form.classList.toggle("has-selection", count > 0);
  }
  function bulkForm() { return document.getElementById("bulk-form"); }
  document.addEventListener("change", function (e) {
    var t = e.target;
    var form = bulkForm();
    if (!form || !t.matches) return;
    if (t.matches("[data-bulk-page]")) {
      document.querySelectorAll("[data-bulk-row]").forEach(function (r) { r.checked = t.checked; });
      if (!t.checked) { var a = form.querySelector("[data-bulk-all]"); if (a) a.checked = false; }
    } else if (t.matches("[data-bulk-all]")) {
      if (t.checked) document.querySelectorAll("[data-bulk-row]").forEach(function (r) { r.checked = true; });
    } else if (t.matches("[data-bulk-row]")) {
      var all = form.querySelector("[data-bulk-all]");
      if (all && !t.checked) all.checked = false;
    } else {
      return;
    }
    bulkState(form);
  });
  function initBulk() {
    var form = bulkForm();
    if (!form || form.hasAttribute("data-bulk-ready")) return;
    form.setAttribute("data-bulk-ready", "");
    // A browser restoring checkboxes after Back must not leave a stale count.
    bulkState(form);
    var status = form.querySelector("[data-bulk-status]");
    if (status && !form.classList.contains("has-selection")) status.textContent = "Select keys to act on several at once.";
  }
  // "All matching" selects by filter: the explicit ids are not sent with it.
  document.addEventListener("htmx:configRequest", function (e) {
    var form = bulkForm();
    if (!form || e.detail.elt !== form) return;
    var all = form.querySelector("[data-bulk-all]");
    var p = e.detail.parameters;
    if (all && all.checked && p) {
      if (typeof p.delete === "function") p.delete("ids"); else delete p.ids;
    }
  });

  // Toasts: at most three at once (the oldest go first), and a newer toast about a key
  // replaces an older one about the same key (data-key).
  var MAX_TOASTS = 3;
  var toastSeq = 0;
  // Toasts in the order they arrived (moving them in and out of a dialog reorders the
  // DOM, so each is stamped when first seen).
  function toastsInOrder() {
    var all = Array.prototype.slice.call(document.querySelectorAll("[data-toast]"));
    all.forEach(function (t) { if (!t.hasAttribute("data-seq")) t.setAttribute("data-seq", String(++toastSeq)); });
    return all.sort(function (a, b) { return a.getAttribute("data-seq") - b.getAttribute("data-seq"); });
  }
  function tidyToasts() {
    var all = toastsInOrder();
    var seen = {};
    for (var i = all.length - 1; i >= 0; i--) {
      var k = all[i].getAttribute("data-key");
      if (!k) continue;
      if (seen[k]) { all[i].remove(); all.splice(i, 1); } else { seen[k] = true; }
    }
    while (all.length > MAX_TOASTS) all.shift().remove();
  }

  function scheduleToasts(root) {
    (root || document).querySelectorAll("[data-toast]:not([data-scheduled])").forEach(function (t) {
      t.setAttribute("data-scheduled", "");
      var ms = t.classList.contains("toast-error") ? 12000 : 8000;
      setTimeout(function () { t.remove(); }, ms);
    });
  }

  // A thin progress bar while any htmx request runs longer than a moment.
  var pending = 0;
  var timer = null;
  document.addEventListener("htmx:beforeRequest", function () {
    pending++;
    if (!timer) timer = setTimeout(function () { document.body.classList.add("is-loading"); }, 150);
  });
  document.addEventListener("htmx:afterRequest", function () {
    pending = Math.max(0, pending - 1);
    if (pending === 0) {
      clearTimeout(timer);
      timer = null;
      document.body.classList.remove("is-loading");
    }
  });

  // Network failures (server down) become a toast instead of silence.
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("toasts");
    if (!box) return;
    var div = document.createElement("div");
    div.className = "toast toast-error";
    div.setAttribute("role", "alert");
    div.setAttribute("data-toast", "");
    var span = document.createElement("span");
    span.className = "toast-message";
    span.textContent = "The server could not be reached. Check your connection and try again.";
    div.appendChild(span);
    box.appendChild(div);
    tidyToasts();
    scheduleToasts(box);
    placeToasts();
  });

  document.addEventListener("DOMContentLoaded", function () {
    tidyToasts();
    openModals(document);
    scheduleToasts(document);
    initBulk();
  });
})();
