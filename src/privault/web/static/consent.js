/* Privault cookie banner (P1.2, P11.3). No framework, no third-party code.
 *
 * On every page: asks GET /api/v1/consent whether a live choice exists (it lapses when it
 * expires or when the banner text, the cookie list or the policy changes). With one, it
 * runs the scripts the choice allows; without one, it shows the banner. Only after the
 * server has stored a choice (PUT) does it run the allowed scripts, which pages mark as
 *   <script type="text/plain" data-consent="analytics" src="...">...</script>
 * (several categories separated by spaces must all be accepted). It also removes the
 * cookies of refused categories that are readable here, so a withdrawal takes effect.
 * Any element with a data-consent-open attribute reopens the banner.
 *
 * The API and the cookie declaration are found next to this script's own address, so
 * another site of the operator may include it; but the choice lives in a first-party
 * cookie and the API answers same-origin requests only (no CORS): on another origin the
 * API must be reachable under that site's own origin (a reverse-proxied path).
 */
(() => {
  "use strict";

  const self = document.currentScript;
  const origin = new URL(self && self.src ? self.src : location.href, location.href);
  const API = new URL("/api/v1/consent", origin).href;
  const DECLARATION = new URL("/cookies", origin).href;
  const COOKIE = "privault_consent";
  const ID = "privault-consent";

  let state = null; // the last answer of the API
  let banner = null; // the open banner
  let returnTo = null; // what had focus before the banner took it
  let status = null; // a live region that outlives the banner

  const STYLES = new URL("/static/consent.css", origin).href;

  // -- talking to the server ------------------------------------------------------------

  async function api(method, body) {
    const init = {
      method,
      cache: "no-store",
      credentials: "include",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API, init);
    if (!response.ok) throw new Error(`the consent API answered ${response.status}`);
    return response.json();
  }

  /** The cookie list version in the privault_consent cookie
   * ("<consent id>.<accepted categories joined by +>.<cookie list version>"), or null. */
  function cookieVersion() {
    for (const part of document.cookie.split(";")) {
      const [name, value = ""] = part.trim().split("=");
      if (name === COOKIE) return value.split(".")[2] || null;
    }
    return null;
  }

  /** The live choice, or null when the banner must ask. The server decides; a cookie
   * from an older cookie list also asks, as the person has not seen this one. */
  function liveChoice(answer) {
    if (answer.ask || !answer.choice) return null;
    const version = cookieVersion();
    if (version && version !== answer.versions.cookies) return null;
    return answer.choice.choices;
  }

  // -- what a choice does on the page ---------------------------------------------------

  function allowed(choices, wanted) {
    const needed = wanted.split(/\s+/).filter(Boolean);
    return needed.length > 0 && needed.every((category) => choices[category] === true);
  }

  /** Turn every marked script the choice allows into a real one, in document order. */
  function activate(choices) {
    for (const held of document.querySelectorAll('script[type="text/plain"][data-consent]')) {
      if (!allowed(choices, held.dataset.consent)) continue;
      const live = document.createElement("script");
      for (const attribute of held.attributes) {
        if (attribute.name !== "type") live.setAttribute(attribute.name, attribute.value);
      }
      if (!held.hasAttribute("src")) live.text = held.text;
      live.async = false;
      held.replaceWith(live);
    }
  }

  function matches(declared, name) {
    const [stem, placeholder] = declared.split("<");
    if (placeholder === undefined) return name === declared;
    return name.startsWith(stem) && name.length > stem.length; // _ga_<container-id>
  }

  /** Remove the readable cookies of every category the choice does not accept. */
  function clearRefused(choices) {
    const refused = state.categories
      .filter((category) => !category.always_on && choices[category.id] !== true)
      .flatMap((category) => category.cookies.map((cookie) => cookie.name));
    const host = location.hostname;
    const domains = [""];
    if (!/^[\d.]+$|:/.test(host)) {
      const labels = host.split(".");
      for (let i = 0; i < labels.length - 1; i += 1) {
        domains.push(`; domain=${labels.slice(i).join(".")}`);
      }
    }
    for (const part of document.cookie.split(";")) {
      const name = part.trim().split("=")[0];
      if (!name || !refused.some((declared) => matches(declared, name))) continue;
      for (const domain of domains) {
        document.cookie = `${name}=; Max-Age=0; path=/${domain}`;
      }
    }
  }

  function honour(choices) {
    clearRefused(choices);
    activate(choices);
  }

  // -- the banner -----------------------------------------------------------------------

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === true) node.setAttribute(name, "");
      else if (value !== false && value !== null && value !== undefined) {
        node.setAttribute(name, value);
      }
    }
    node.append(...children);
    return node;
  }

  /** Tell screen readers, once the banner is gone. */
  function announce(text) {
    if (!status) {
      status = element("p", { role: "status", id: `${ID}-status` });
      document.body.append(status);
    }
    status.textContent = text;
  }

  function refusedByGpc(category) {
    return state.gpc && category.gpc_refuses;
  }

  /** The choice to send for each button: every category, strictly necessary always on. */
  function everything(on) {
    const choices = {};
    for (const category of state.categories) {
      choices[category.id] = category.always_on || (on && !refusedByGpc(category));
    }
    return choices;
  }

  function chosen() {
    const choices = everything(false);
    for (const box of banner.querySelectorAll("input[data-category]")) {
      choices[box.dataset.category] = box.checked;
    }
    return choices;
  }

  function categoryItem(category, choosing, current) {
    const descId = `${ID}-${category.id}-desc`;
    const description = element("p", { class: "pc-desc", id: descId }, category.description);
    if (!choosing) {
      const title = element("span", { class: "pc-row" }, category.title);
      if (category.always_on) title.append(" (always on)");
      else if (refusedByGpc(category)) title.append(" (off: Global Privacy Control)");
      return element("li", {}, title, description);
    }
    const boxId = `${ID}-${category.id}`;
    const fixed = category.always_on || refusedByGpc(category);
    const box = element("input", {
      type: "checkbox",
      id: boxId,
      "data-category": fixed ? null : category.id,
      "aria-describedby": descId,
      disabled: fixed,
    });
    box.checked = category.always_on || (!refusedByGpc(category) && current[category.id] === true);
    let label = category.title;
    if (category.always_on) label += " (always on)";
    else if (refusedByGpc(category)) label += " (off: Global Privacy Control)";
    const row = element("label", { class: "pc-row", for: boxId }, box, label);
    return element("li", {}, row, description);
  }

  function button(text, action) {
    const node = element("button", { type: "button" }, text);
    node.addEventListener("click", action);
    return node;
  }

  function render(choosing, changing) {
    const current = (state.choice && state.choice.choices) || {};
    const intro = element(
      "div",
      { id: `${ID}-desc` },
      element(
        "p",
        {},
        "We use strictly necessary cookies to run this site. With your agreement we would " +
          "also use the cookies below. You can change your mind at any time with " +
          "\u201cCookie settings\u201d at the bottom of every page.",
      ),
    );
    const gpc = state.categories.filter(refusedByGpc).map((category) => category.title);
    if (gpc.length) {
      intro.append(
        element(
          "p",
          { class: "pc-note" },
          "Your browser sent a Global Privacy Control signal, and we honour it: " +
            `${gpc.join(" and ")} ${gpc.length > 1 ? "are" : "is"} off.`,
        ),
      );
    }
    if (changing) {
      intro.append(
        element(
          "p",
          { class: "pc-note" },
          "A change applies from the next page you open: a script already running on " +
            "this page keeps running until you leave it.",
        ),
      );
    }
    const list = element(
      "ul",
      {},
      ...state.categories.map((category) => categoryItem(category, choosing, current)),
    );
    const actions = element(
      "div",
      { class: "pc-actions" },
      button("Accept all", () => save(everything(true))),
      button("Reject all", () => save(everything(false))),
      choosing
        ? button("Save my choices", () => save(chosen()))
        : button("Choose", () => draw(true, changing)),
    );
    if (changing) actions.append(button("Keep my current choice", close));
    const link = element(
      "p",
      {},
      element("a", { href: DECLARATION }, "Which cookies, who sets them and for how long"),
    );
    const title = element("h2", { id: `${ID}-title` }, "Your cookie choice");
    return [title, intro, list, actions, link];
  }

  function draw(choosing, changing) {
    banner.replaceChildren(...render(choosing, changing));
    (banner.querySelector("input:not([disabled])") || banner).focus();
  }

  /** Open the banner: ``fromSettings`` when the person asked for it (the toggles shown). */
  function show(fromSettings) {
    // With a live choice the banner changes it, and may be left without changing it;
    // without one, only a choice closes it (Escape does not).
    const changing = liveChoice(state) !== null;
    returnTo = document.activeElement;
    if (!document.getElementById(`${ID}-style`)) {
      document.head.append(element("link", { id: `${ID}-style`, rel: "stylesheet", href: STYLES }));
    }
    // Not modal: the page stays usable. In the flow at the top of the page, first in
    // keyboard order, so it never covers what has focus.
    banner = element("section", {
      id: ID,
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": `${ID}-title`,
      "aria-describedby": `${ID}-desc`,
      tabindex: "-1",
    });
    banner.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && changing) close();
    });
    banner.replaceChildren(...render(fromSettings, changing));
    document.body.prepend(banner);
    // On first sight, take focus unless the person is already busy in the page.
    if (fromSettings || !returnTo || returnTo === document.body) banner.focus();
  }

  function close() {
    if (!banner) return;
    const hadFocus = banner.contains(document.activeElement);
    banner.remove();
    banner = null;
    if (hadFocus && returnTo && returnTo !== document.body && returnTo.isConnected) {
      returnTo.focus();
    }
  }

  async function save(choices) {
    for (const control of banner.querySelectorAll("button")) control.disabled = true;
    let answer;
    try {
      answer = await api("PUT", { choices });
    } catch {
      for (const control of banner.querySelectorAll("button")) control.disabled = false;
      const problem = banner.querySelector("[role=alert]") || element("p", { role: "alert" });
      problem.textContent = "Your choice could not be saved. Please try again.";
      banner.querySelector(".pc-actions").before(problem);
      return;
    }
    state = answer;
    close();
    announce("Your cookie choice is saved.");
    honour(answer.choice ? answer.choice.choices : everything(false));
    settle("given");
  }

  async function reopen(event) {
    event.preventDefault();
    try {
      state = await api("GET");
    } catch {
      announce("The cookie settings cannot be opened right now. Please try again.");
      return;
    }
    close();
    show(true);
  }

  // -- start ----------------------------------------------------------------------------

  /** Says on <html data-consent-state> where things stand, for styles and tests:
   * "ask" (the banner waits for a choice), "given", or "unavailable" (no answer). */
  function settle(where) {
    document.documentElement.dataset.consentState = where;
  }

  async function start() {
    document.addEventListener("click", (event) => {
      const target = event.target;
      if (target instanceof Element && target.closest("[data-consent-open]")) reopen(event);
    });
    try {
      state = await api("GET");
    } catch {
      settle("unavailable"); // Nothing optional runs; the next page asks again.
      return;
    }
    const choices = liveChoice(state);
    if (choices) {
      honour(choices);
      settle("given");
    } else {
      clearRefused(everything(false));
      show(false);
      settle("ask");
    }
  }

  start();
})();

/* First-party analytics (P2.1, P2.2), kept apart from the banner above: once this
 * browser's choice accepts analytics (<html data-consent-state="given"> and "analytics"
 * among the accepted categories of the privault_consent cookie), one page view per page
 * load goes to POST /api/v1/analytics/events. The visit id lives in sessionStorage (this
 * tab only, gone when it closes; not a cookie). Only the page's path and the referrer's
 * address without its query string leave the browser; the server keeps no more either.
 */
(() => {
  "use strict";

  const self = document.currentScript;
  const origin = new URL(self && self.src ? self.src : location.href, location.href);
  const EVENTS = new URL("/api/v1/analytics/events", origin).href;
  const VISIT = "privault_visit";
  let sent = false;

  function accepted() {
    for (const part of document.cookie.split(";")) {
      const [name, value = ""] = part.trim().split("=");
      if (name === "privault_consent") return (value.split(".")[1] || "").split("+");
    }
    return [];
  }

  function visitId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const fresh = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    try {
      const kept = sessionStorage.getItem(VISIT);
      if (kept && /^[A-Za-z0-9_-]{16,64}$/.test(kept)) return kept;
      sessionStorage.setItem(VISIT, fresh);
    } catch {
      // Storage off: this page view counts as a visit of its own.
    }
    return fresh;
  }

  function referrer() {
    try {
      const from = new URL(document.referrer);
      return /^https?:$/.test(from.protocol) ? from.origin + from.pathname : null;
    } catch {
      return null;
    }
  }

  function count() {
    if (sent || document.documentElement.dataset.consentState !== "given") return;
    if (!accepted().includes("analytics")) return;
    sent = true;
    fetch(EVENTS, {
      method: "POST",
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        visit: visitId(),
        page: location.pathname,
        referrer: referrer(),
        at: new Date().toISOString(),
      }),
    }).catch(() => {}); // a page view lost is not worth a word to the visitor
  }

  new MutationObserver(count).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-consent-state"],
  });
  count();
})();
