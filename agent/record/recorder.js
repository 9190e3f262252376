// What `journeyman record` injects into every page (context.add_init_script): it reports
// what the person does, with a selector for each element, to the recorder's binding
// (context.expose_binding, so it survives navigations), and shows the check overlay.
//
// Selectors, in the order Playwright recommends, the first that matches exactly one
// element of the page wins: role + accessible name, label, test id, text, then CSS.
// Matching is counted here with the rules of Playwright's own engines for the forms
// written (role=R[name="N"] is exact and case-sensitive, internal:label="L"s and
// internal:text="T"s exact); the overlay is never counted, since the replay has none.
(() => {
  "use strict";
  if (window.top !== window || window.__journeymanRecording) return; // main frame only
  window.__journeymanRecording = true;
  const BINDING = "__journeymanRecord";
  const HOST = "journeyman-recorder";
  // The overlay shows how many events the recorder has taken, and keeps on its host how
  // many it has not yet (data-pending): a person, or a test, sees when all are in.
  let pending = 0;
  let taken = 0;
  const counted = () => {
    const host = document.querySelector(HOST);
    if (host) host.dataset.pending = String(pending);
    if (status && !picking) status.textContent = `Recording: ${taken} recorded`;
  };
  const send = (event) => {
    const binding = window[BINDING];
    if (typeof binding !== "function") return;
    pending += 1;
    counted();
    binding(event).then(() => { taken += 1; }, () => {}).finally(() => {
      pending -= 1;
      counted();
    });
  };
  const norm = (text) => (text || "").replace(/\s+/g, " ").trim();
  const quote = (text) => JSON.stringify(text);

  // --- the elements a selector may match: the page's, open shadow roots included ---
  function* elements(root) {
    for (const element of root.querySelectorAll("*")) {
      if (element.localName === HOST) continue;
      yield element;
      if (element.shadowRoot) yield* elements(element.shadowRoot);
    }
  }

  // --- roles and accessible names (the implicit roles of common controls) ---
  const ROLES = new Set([
    "button", "link", "checkbox", "radio", "switch", "tab", "menuitem", "option",
    "textbox", "searchbox", "spinbutton", "combobox", "listbox", "heading", "img",
  ]);
  const NAME_FROM_CONTENT = new Set([
    "button", "link", "checkbox", "radio", "switch", "tab", "menuitem", "option", "heading",
  ]);
  const TEXT_TYPES = new Set(["text", "email", "tel", "url", ""]);
  const BUTTON_TYPES = new Set(["button", "submit", "reset", "image"]);

  function roleOf(element) {
    const explicit = (element.getAttribute("role") || "").trim().split(/\s+/)[0];
    if (explicit) return ROLES.has(explicit) ? explicit : null;
    const tag = element.localName;
    if (tag === "a" || tag === "area") return element.hasAttribute("href") ? "link" : null;
    if (tag === "button") return "button";
    if (tag === "textarea") return "textbox";
    if (tag === "select") return element.multiple || element.size > 1 ? "listbox" : "combobox";
    if (/^h[1-6]$/.test(tag)) return "heading";
    if (tag === "img") return element.getAttribute("alt") === "" ? null : "img";
    if (tag !== "input") return null;
    const type = (element.getAttribute("type") || "").toLowerCase();
    if (BUTTON_TYPES.has(type)) return "button";
    if (type === "checkbox" || type === "radio") return type;
    if (type === "number") return "spinbutton";
    if (type === "search") return element.hasAttribute("list") ? "combobox" : "searchbox";
    if (TEXT_TYPES.has(type)) return element.hasAttribute("list") ? "combobox" : "textbox";
    return null; // password, file, hidden, date...: no role to name them by
  }

  function hiddenForAria(element) {
    if (element.closest("[aria-hidden=true]")) return true;
    return !element.checkVisibility({ visibilityProperty: true });
  }

  // A control inside the text names itself by its value (accname's embedded controls),
  // except the control being named, which is left out of its own label.
  function embedded(control, named) {
    if (control === named) return "";
    if (control.localName === "select") {
      return [...control.selectedOptions].map((option) => option.textContent).join(" ");
    }
    if (control.localName === "textarea") return control.value;
    if (control.localName !== "input") return null;
    return TEXT_TYPES.has(control.type) || control.type === "number" ? control.value : "";
  }

  function contentText(node, named) {
    let text = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) text += child.data;
      if (child.nodeType !== Node.ELEMENT_NODE || hiddenForAria(child)) continue;
      const label = child.getAttribute("aria-label");
      const value = embedded(child, named);
      let inner;
      if (value !== null) inner = value;
      else if (label && label.trim()) inner = label;
      else if (child.localName === "img") inner = child.getAttribute("alt") || "";
      else inner = contentText(child.shadowRoot || child, named);
      const inline = getComputedStyle(child).display.startsWith("inline");
      text += inline ? inner : ` ${inner} `;
    }
    return text;
  }

  function accessibleName(element, role) {
    const ids = (element.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    const byIds = ids.map((id) => document.getElementById(id)).filter(Boolean);
    if (byIds.length) return norm(byIds.map((e) => contentText(e, element)).join(" "));
    const label = element.getAttribute("aria-label");
    if (label && label.trim()) return norm(label);
    const tag = element.localName;
    const type = (element.getAttribute("type") || "").toLowerCase();
    if (tag === "input" && BUTTON_TYPES.has(type)) {
      if (type === "image") return norm(element.getAttribute("alt") || "");
      const fallback = { submit: "Submit", reset: "Reset" }[type] || "";
      return norm(element.getAttribute("value") || fallback);
    }
    if (element.labels && element.labels.length) {
      return norm([...element.labels].map((l) => contentText(l, element)).join(" "));
    }
    if (tag === "img") return norm(element.getAttribute("alt") || "");
    if (NAME_FROM_CONTENT.has(role)) {
      const text = norm(contentText(element, element));
      if (text) return text;
    }
    return norm(element.getAttribute("title") || element.getAttribute("placeholder") || "");
  }

  // --- the strategies, in order; each returns [selector, matches] or null ---
  function byRole(element) {
    const role = roleOf(element);
    if (!role || hiddenForAria(element)) return null;
    const name = accessibleName(element, role);
    if (!name || name.length > 80) return null;
    const count = (candidate) => roleOf(candidate) === role && !hiddenForAria(candidate)
      && accessibleName(candidate, role) === name;
    return [`role=${role}[name=${quote(name)}]`, count];
  }

  // What Playwright's label engine reads: aria-labelledby, else aria-label, else <label>s.
  function labelsOf(element) {
    const ids = (element.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    const byIds = ids.map((id) => document.getElementById(id)).filter(Boolean);
    if (byIds.length) return byIds.map((e) => norm(e.textContent));
    const label = element.getAttribute("aria-label");
    if (label && label.trim()) return [norm(label)];
    return element.labels ? [...element.labels].map((l) => norm(l.textContent)) : [];
  }

  function byLabel(element) {
    const label = labelsOf(element).find((text) => text && text.length <= 80);
    if (!label) return null;
    return [`internal:label=${quote(label)}s`, (e) => labelsOf(e).includes(label)];
  }

  const TEST_IDS = ["data-testid", "data-test-id", "data-test"];
  function byTestId(element) {
    const attribute = TEST_IDS.find((name) => element.getAttribute(name));
    if (!attribute) return null;
    const value = element.getAttribute(attribute);
    const selector = /^[A-Za-z0-9_-]+$/.test(value)
      ? `${attribute}=${value}`
      : `internal:testid=[${attribute}=${quote(value)}s]`;
    return [selector, (e) => e.getAttribute(attribute) === value];
  }

  const NO_TEXT = new Set(["script", "style", "noscript", "template", "head", "title"]);
  const textOf = (element) => norm(element.textContent);
  function byText(element) {
    const input = element.localName === "input";
    if (input && !BUTTON_TYPES.has(element.type)) return null; // typed text is no name
    const text = input ? norm(element.value) : textOf(element);
    if (!text || text.length > 80) return null;
    const matches = (e) => {
      if (NO_TEXT.has(e.localName)) return false;
      if (e.localName === "input" && BUTTON_TYPES.has(e.type)) return norm(e.value) === text;
      // the deepest elements with that text: an ancestor whose child says it all does not
      return textOf(e) === text && ![...e.children].some((child) => textOf(child) === text);
    };
    return matches(element) ? [`internal:text=${quote(text)}s`, matches] : null;
  }

  function cssPath(element) {
    const unique = (selector) => document.querySelectorAll(selector).length === 1;
    const parts = [];
    for (let node = element; node && node !== document.documentElement; node = node.parentElement) {
      if (node.id && unique(`#${CSS.escape(node.id)}`)) {
        parts.unshift(`#${CSS.escape(node.id)}`);
        return parts.join(" > ");
      }
      let part = node.localName;
      const parent = node.parentElement;
      const same = parent ? [...parent.children].filter((c) => c.localName === part) : [node];
      if (same.length > 1) part += `:nth-of-type(${same.indexOf(node) + 1})`;
      parts.unshift(part);
    }
    return parts.join(" > ");
  }

  function selectorFor(element) {
    for (const strategy of [byRole, byLabel, byTestId, byText]) {
      const found = strategy(element);
      if (!found) continue;
      const [selector, matches] = found;
      let count = 0;
      for (const candidate of elements(document)) if (matches(candidate) && ++count > 1) break;
      if (count === 1) return selector;
    }
    return cssPath(element);
  }
  window.__journeymanSelector = selectorFor; // for the tests of selector choice

  // --- what the person does ---
  const fromOverlay = (event) => event.composedPath().some((n) => n.localName === HOST);
  const CONTROL_ROLES = ["button", "link", "checkbox", "radio", "switch", "tab", "menuitem",
    "option"];
  const CLICKABLE = ["a[href]", "button", "input", "select", "textarea", "label", "summary",
    "[onclick]", ...CONTROL_ROLES.map((role) => `[role=${role}]`)].join(", ");
  const TYPED = (e) => (e.localName === "textarea" || (e.localName === "input"
    && !BUTTON_TYPES.has(e.type) && !["checkbox", "radio", "file", "hidden"].includes(e.type)));
  const hints = (e) => [e.name, e.id, e.getAttribute("autocomplete"), ...labelsOf(e)]
    .filter(Boolean);

  // Enter in a field submits its form by clicking the form's submit button: that click
  // is the press's doing, not the person's (it has no mouse, detail 0).
  let submittedBy = null;

  function onClick(event) {
    if (!event.isTrusted || fromOverlay(event)) return;
    if (picking) return pick(event);
    const target = event.target.closest(CLICKABLE) || event.target;
    if (event.detail === 0 && submittedBy && target.form === submittedBy) return;
    // Recorded by their change instead (a click on their label changes them too).
    const control = target.localName === "label" ? target.control : target;
    if (control && (TYPED(control) || ["select", "option"].includes(control.localName))) return;
    if (control && ["checkbox", "radio", "file"].includes(control.type)) return;
    send({ type: "click", selector: selectorFor(target) });
  }

  function onInput(event) {
    const field = event.target;
    if (!event.isTrusted || fromOverlay(event) || !TYPED(field)) return;
    send({ type: "fill", selector: selectorFor(field), value: field.value,
           field_type: field.type, hints: hints(field) });
  }

  // Changes count even when a script made them (automation sets choices and files that
  // way): recording the state the control is in is harmless to replay.
  function onChange(event) {
    const field = event.target;
    if (fromOverlay(event)) return;
    const selector = () => selectorFor(field);
    if (field.localName === "select") {
      const values = [...field.selectedOptions].map((o) => o.value);
      send({ type: "select", selector: selector(), values });
    } else if (field.type === "checkbox" || field.type === "radio") {
      send({ type: field.checked ? "check" : "uncheck", selector: selector() });
    } else if (field.type === "file") {
      send({ type: "upload", selector: selector(), values: [...field.files].map((f) => f.name) });
    }
  }

  function onKeydown(event) {
    if (!event.isTrusted || fromOverlay(event) || event.key !== "Enter") return;
    if (TYPED(event.target) && event.target.localName !== "textarea") {
      send({ type: "press", selector: selectorFor(event.target), value: "Enter" });
      submittedBy = event.target.form;
      setTimeout(() => { submittedBy = null; });
    }
  }

  // --- the overlay: checks added by pointing at the page ---
  let picking = null; // the check being added: "expect_text", "expect_visible", "extract"
  let status = null;
  let box = null;

  function pick(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
    const element = event.target;
    const check = picking;
    stopPicking();
    // A field shows no text (expect_text is then expect_visible), and its value is never
    // sent: it may be a password.
    const text = element.localName === "input" ? "" : norm(element.innerText);
    const name = norm(element.id || TEST_IDS.map((a) => element.getAttribute(a)).find(Boolean)
      || element.getAttribute("name") || "");
    send({ type: check, selector: selectorFor(element), value: text, hints: [name],
           field_type: element.localName === "input" ? element.type : "" });
  }

  function swallow(event) {
    if (picking && event.isTrusted && !fromOverlay(event)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }

  function highlight(event) {
    if (!picking || fromOverlay(event) || !box) return;
    const r = event.target.getBoundingClientRect();
    Object.assign(box.style, { display: "block", left: `${r.left}px`, top: `${r.top}px`,
                               width: `${r.width}px`, height: `${r.height}px` });
  }

  function stopPicking() {
    picking = null;
    if (box) box.style.display = "none";
    counted();
  }

  const CHECKS = [
    ["jm-expect-text", "Expect this text", "expect_text"],
    ["jm-expect-element", "Expect this element", "expect_visible"],
    ["jm-extract", "Extract this value", "extract"],
  ];

  function overlay() {
    if (document.querySelector(HOST)) return;
    const host = document.createElement(HOST);
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML = `<style>
      .bar { position: fixed; right: 12px; bottom: 12px; z-index: 2147483647; display: flex;
             gap: 6px; align-items: center; padding: 6px 8px; border-radius: 6px;
             background: #1f2937; color: #fff; font: 13px system-ui, sans-serif;
             box-shadow: 0 2px 8px rgba(0, 0, 0, .3); }
      button { font: inherit; padding: 3px 8px; border: 0; border-radius: 4px; cursor: pointer; }
      .box { position: fixed; display: none; pointer-events: none; z-index: 2147483646;
             outline: 2px solid #e11d48; background: rgba(225, 29, 72, .08); }
    </style><div class="box"></div><div class="bar"><span id="jm-status">Recording</span></div>`;
    box = root.querySelector(".box");
    status = root.querySelector("#jm-status");
    const bar = root.querySelector(".bar");
    for (const [id, label, check] of CHECKS) {
      const button = document.createElement("button");
      button.id = id;
      button.textContent = label;
      // Keep the person's text selection: the button takes no focus.
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", () => {
        const selected = norm(String(window.getSelection() || ""));
        if (check === "expect_text" && selected) {
          send({ type: "expect_text", value: selected });
          return;
        }
        picking = check;
        status.textContent = `Click the element to ${label.toLowerCase()} (Esc: cancel)`;
      });
      bar.append(button);
    }
    document.documentElement.append(host); // beside <body>: no nth-of-type changes there
    counted();
  }

  function announce() {
    const heading = document.querySelector("h1");
    send({ type: "page", url: location.href, title: document.title,
           value: heading ? norm(heading.textContent) : "" });
    overlay();
  }

  for (const [name, handler] of [["click", onClick], ["input", onInput], ["change", onChange],
    ["keydown", onKeydown], ["mousedown", swallow], ["mouseup", swallow],
    ["pointerdown", swallow], ["pointerup", swallow], ["mouseover", highlight]]) {
    window.addEventListener(name, handler, true);
  }
  window.addEventListener("keydown", (event) => {
    if (picking && event.key === "Escape") stopPicking();
  }, true);
  for (const method of ["pushState", "replaceState"]) {
    const original = history[method];
    history[method] = function (...args) {
      const result = original.apply(this, args);
      announce();
      return result;
    };
  }
  window.addEventListener("popstate", announce);
  // The page is opening another (a link, a form, a script): the browser fires "navigate"
  // for those and never for an address typed by the person, which is a goto instead.
  if (window.navigation) {
    navigation.addEventListener("navigate", (event) => {
      if (!event.hashChange) send({ type: "leave", url: event.destination.url });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", announce, { once: true });
  } else {
    announce();
  }
})();
