// The demo page: everything live goes through the SDK bundle (presence-client.js, built from client/src).
import { connect, isShownOnline } from "/presence-client.js";

const $ = (id) => document.getElementById(id);
const STATUS_LABEL = { online: "online", away: "away", busy: "busy", offline: "offline", unknown: "unknown", invisible: "invisible" };

/** One device id per tab, kept across reloads of that tab, so a reload resumes instead of adding a device. */
function tabDeviceId() {
  let id = sessionStorage.getItem("edge-presence-device");
  if (!id) {
    id = `web-${crypto.randomUUID().slice(0, 8)}`;
    sessionStorage.setItem("edge-presence-device", id);
  }
  return id;
}

async function devToken(userId) {
  const res = await fetch("/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ userId }) });
  if (res.status === 404) throw new Error("Dev sign-in is off on this server (set DEV_MODE=1 in .dev.vars).");
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message ?? `sign-in failed (${res.status})`);
  return body.token;
}

function ago(ms) {
  if (ms === null || ms === undefined) return "never seen";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

const where = (p) => (p.realm ? `${p.realm} · (${p.position ? `${p.position.x}, ${p.position.y}, ${p.position.z}` : "?"})` : "");

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function log(text) {
  const item = el("li", {}, el("time", {}, new Date().toLocaleTimeString()), text);
  $("log").prepend(item);
  while ($("log").children.length > 100) $("log").lastChild.remove();
}

let client = null;
let me = null;
/** Status, text and "clear after" as last sent with setStatus (a change sends them again). */
let appliedStatus = null;
/** The "clears at" time the page last showed. */
let shownClearsAt = null;
/** "Last seen" privacy, from the friends list. */
let privacy = { lastSeen: "all", lastSeenShownTo: [] };
const flashes = new Map();
/** The realm this page last published (its count is shown first). */
let myRealm = null;
/** Live realm counts shown, by realm: one SDK subscription each (`subscribeRealm`, its own socket). */
const realmCounts = new Map();
/** The user's realm and at most this many in all with the friends' realms. */
const MAX_REALMS = 6;

function readForm() {
  const num = (id) => {
    const n = Number($(id).value);
    return Number.isFinite(n) ? n : 0;
  };
  return {
    position: { x: num("pos-x"), y: num("pos-y"), z: num("pos-z") },
    realm: $("realm").value.trim() || "lobby",
    status: $("status").value,
    statusText: $("status-text").value.trim() || null,
  };
}

function renderSelf() {
  const self = client?.self;
  $("self-avatar").replaceChildren(
    me ? me[0].toUpperCase() : "?",
    el("span", { class: "dot", dataset: { status: self ? (self.invisible ? "offline" : self.status) : "offline" } }),
  );
  $("self-name").textContent = me ?? "";
  if (!self) {
    $("self-summary").textContent = client?.state === "open" ? "connected, not shown yet" : "connecting…";
    return;
  }
  const status = self.invisible ? "invisible" : self.status;
  const clearsAt = client.statusExpiresAt;
  const until = clearsAt ? ` · clears at ${new Date(clearsAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
  $("self-summary").textContent = `${STATUS_LABEL[status]}${self.realm ? ` in ${where(self)}` : ""}${until}`;
  // Cleared on its own (the server reverted it, the SDK followed): the form follows.
  const cleared = shownClearsAt !== null && clearsAt === null && Date.now() >= shownClearsAt;
  shownClearsAt = clearsAt;
  if (cleared) {
    $("status").value = status;
    $("status-text").value = self.statusText ?? "";
    $("clear-after").value = "";
    appliedStatus = JSON.stringify([$("status").value, self.statusText ?? null, ""]);
  }
}

/** The "clear after" choice as the SDK takes it. */
function clearAfter(choice) {
  if (!choice) return undefined;
  if (choice === "today") {
    const end = new Date();
    end.setHours(23, 59, 59, 999);
    return { clearAt: end.getTime() };
  }
  return { clearAfterMs: Number(choice) };
}

function renderFriends() {
  const everyone = client?.friends ?? [];
  // Following a subset: the others get no pushes, so what the page holds of them would go stale. Not shown.
  const following = client?.following ?? null;
  renderFollowChoices(everyone, following);
  const friends = everyone
    .filter((p) => following === null || following.includes(p.userId))
    .sort((a, b) => {
      const rank = (p) => (isShownOnline(p.status) ? 0 : p.status === "unknown" ? 1 : 2);
      return rank(a) - rank(b) || a.userId.localeCompare(b.userId);
    });
  const list = $("friends");
  list.replaceChildren(
    ...friends.map((p) => {
      const online = isShownOnline(p.status);
      return el(
        "li",
        { class: `friend${flashes.has(p.userId) ? " flash" : ""}`, dataset: { user: p.userId, status: p.status, seq: String(p.seq) } },
        el("span", { class: "avatar" }, p.userId[0].toUpperCase(), el("span", { class: "dot", dataset: { status: p.status } })),
        el(
          "div",
          {},
          el("div", { class: "name" }, p.userId, " ", el("span", { class: `status-label status-${p.status}` }, STATUS_LABEL[p.status] ?? p.status)),
          online ? el("div", { class: "where" }, where(p)) : null,
          online && p.statusText ? el("div", { class: "status-text" }, `“${p.statusText}”`) : null,
        ),
        el(
          "div",
          { class: "seen" },
          online ? `active ${p.lastActiveAt ? ago(p.lastActiveAt) : ""}` : p.lastActiveAt ? `last seen ${ago(p.lastActiveAt)}` : "last seen hidden or never",
          privacy.lastSeen === "chosen" ? lastSeenToggle(p.userId) : null,
        ),
      );
    }),
  );
  const onlineCount = friends.filter((p) => isShownOnline(p.status)).length;
  $("online-count").textContent = friends.length ? `${onlineCount} of ${friends.length} online` : "";
  $("no-friends").hidden = everyone.length > 0;
  $("following-note").hidden = following === null;
  $("following-note").textContent = following === null ? "" : `Showing only ${friends.length} of your ${everyone.length} friends.`;
  syncRealms();
}

/** One box per friend, ticked for the ones followed (kept as the user left them while the panel is open). */
function renderFollowChoices(everyone, following) {
  const box = $("follow-choices");
  const ticked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const known = new Set([...box.querySelectorAll("input")].map((i) => i.value));
  const ids = everyone.map((p) => p.userId).sort();
  if (ids.length === known.size && ids.every((id) => known.has(id))) return;
  box.replaceChildren(
    ...ids.map((id) => {
      const input = el("input", { type: "checkbox", value: id, "data-follow": id });
      input.checked = known.has(id) ? ticked.has(id) : following === null || following.includes(id);
      return el("label", { class: "small" }, input, id);
    }),
  );
}

async function follow(choice) {
  try {
    await client.setFriends(choice);
    log(choice === "all" ? "showing every friend" : `showing only ${choice.length ? choice.join(", ") : "nobody"}`);
  } catch (error) {
    log(`follow: ${error.code ?? error.message}`);
  }
  renderFriends();
}

/** The user's realm first, then the realms online friends are in (most friends first), at most MAX_REALMS. */
function shownRealms() {
  const byRealm = friendsByRealm();
  const others = [...byRealm.keys()].filter((r) => r !== myRealm).sort((a, b) => byRealm.get(b).length - byRealm.get(a).length || a.localeCompare(b));
  return [...(myRealm ? [myRealm] : []), ...others].slice(0, MAX_REALMS);
}

function friendsByRealm() {
  const byRealm = new Map();
  const following = client?.following ?? null;
  for (const p of client?.friends ?? []) {
    if (!isShownOnline(p.status) || !p.realm || (following !== null && !following.includes(p.userId))) continue;
    byRealm.set(p.realm, [...(byRealm.get(p.realm) ?? []), p.userId]);
  }
  return byRealm;
}

/** Subscribes to the realms to show and drops the others; counts arrive batched, at most one a second per realm. */
function syncRealms() {
  if (!client) return;
  const wanted = shownRealms();
  for (const [realm, entry] of realmCounts) {
    if (wanted.includes(realm)) continue;
    entry.subscription.close();
    realmCounts.delete(realm);
  }
  for (const realm of wanted) {
    if (realmCounts.has(realm)) continue;
    const entry = { subscription: null, count: null };
    realmCounts.set(realm, entry);
    entry.subscription = client.subscribeRealm(realm, (c) => {
      if (realmCounts.get(realm) !== entry) return; // a frame still on its way after the page let go of this realm
      entry.count = c.count;
      renderRealms();
    });
  }
  renderRealms();
}

function closeRealms() {
  for (const entry of realmCounts.values()) entry.subscription.close();
  realmCounts.clear();
}

function renderRealms() {
  const countOf = (realm) => realmCounts.get(realm)?.count;
  const shown = (count) => (count === null || count === undefined ? "…" : String(count));
  const self = client?.self;
  const uncounted = self?.invisible ? " (you are not counted while invisible)" : "";
  $("realm-here").replaceChildren(
    ...(myRealm ? [el("span", { class: "realm-count", id: "realm-count" }, shown(countOf(myRealm))), ` online in ${myRealm}${uncounted}`] : ["not in a realm yet"]),
  );
  const byRealm = friendsByRealm();
  $("realms").replaceChildren(
    ...shownRealms().map((realm) => {
      const friends = byRealm.get(realm) ?? [];
      const count = countOf(realm);
      return el(
        "li",
        { class: `realm${realm === myRealm ? " current" : ""}`, dataset: { realm, count: count === null || count === undefined ? "" : String(count) } },
        el("span", { class: "realm-name" }, realm, realm === myRealm ? el("span", { class: "muted" }, " · you are here") : null),
        el("span", { class: "realm-count" }, `${shown(count)} online`),
        friends.length ? el("span", { class: "realm-friends" }, `friends here: ${friends.sort().join(", ")}`) : null,
      );
    }),
  );
}

/** With "friends I choose": whether this friend sees your last seen, and a click to change it. */
function lastSeenToggle(userId) {
  const shown = privacy.lastSeenShownTo.includes(userId);
  const box = el("input", { type: "checkbox", title: "sees when you were last online", "data-last-seen": userId });
  box.checked = shown;
  box.addEventListener("change", async () => {
    try {
      applyPrivacy(await client.showLastSeenTo(userId, box.checked));
    } catch (error) {
      log(`last seen: ${error.code ?? error.message}`);
    }
  });
  return el("label", { class: "small last-seen-choice" }, box, " sees my last seen");
}

function applyPrivacy(list) {
  privacy = { lastSeen: list.lastSeen ?? "all", lastSeenShownTo: list.lastSeenShownTo ?? [] };
  $("last-seen").value = privacy.lastSeen;
  renderFriends();
}

async function renderRequests() {
  if (!client) return;
  let list;
  try {
    list = await client.getFriendList();
  } catch {
    return;
  }
  const action = (label, cls = "") => el("button", { type: "button", class: `small-button ${cls}`, "data-action": label.toLowerCase() }, label);
  const row = (request, direction) => {
    const item = el(
      "li",
      { class: "request", dataset: { user: request.userId, direction } },
      el("span", { class: "who" }, direction === "incoming" ? `${request.userId} asks` : `you asked ${request.userId}`),
      request.message ? el("span", { class: "status-text" }, `“${request.message}”`) : null,
    );
    const buttons = direction === "incoming" ? [action("Accept", "primary"), action("Reject")] : [action("Cancel")];
    for (const button of buttons) {
      button.addEventListener("click", async () => {
        const op = { accept: "acceptFriendRequest", reject: "rejectFriendRequest", cancel: "cancelFriendRequest" }[button.dataset.action];
        try {
          await client[op](request.userId);
        } catch (error) {
          log(`${button.dataset.action} failed: ${error.code ?? error.message}`);
        }
        void renderRequests();
      });
      item.append(button);
    }
    return item;
  };
  applyPrivacy(list);
  $("incoming").replaceChildren(...list.incoming.map((r) => row(r, "incoming")));
  $("outgoing").replaceChildren(...list.outgoing.map((r) => row(r, "outgoing")));
}

function flash(userId) {
  clearTimeout(flashes.get(userId));
  flashes.set(
    userId,
    setTimeout(() => {
      flashes.delete(userId);
      renderFriends();
    }, 1200),
  );
}

function setConnection(state) {
  const pill = $("connection");
  pill.textContent = state;
  pill.dataset.state = state;
  pill.className = `pill pill-${state}`;
}

async function signIn(userId) {
  $("sign-in-error").hidden = true;
  try {
    await devToken(userId); // fail early with a readable message
  } catch (error) {
    $("sign-in-error").textContent = error.message;
    $("sign-in-error").hidden = false;
    return;
  }
  me = userId;
  localStorage.setItem("edge-presence-user", userId);
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = userId;
  $("me-name").hidden = false;
  $("sign-out").hidden = false;
  document.title = `${userId} · edge-presence`;
  myRealm = readForm().realm;

  client = connect({
    url: location.origin,
    getToken: () => devToken(userId), // called on every (re)connect: tokens are short-lived
    device: tabDeviceId(),
    kind: "web",
    initial: readForm(),
    reconnect: { initialDelayMs: 500, maxDelayMs: 10_000 },
  });
  client.on("connection", (e) => {
    setConnection(e.state);
    log(`connection ${e.state}${e.delayMs !== undefined ? `, retry in ${(e.delayMs / 1000).toFixed(1)} s` : ""}${e.code ? ` (code ${e.code})` : ""}`);
    renderSelf();
  });
  client.on("self", renderRealms);
  client.on("online", (p) => log(`${p.userId} is ${p.status}`));
  client.on("offline", (p) => log(`${p.userId} went offline`));
  client.on("update", ({ presence, previous }) => {
    // Online ↔ offline is logged above; a change between shown statuses here.
    if (previous && previous.status !== presence.status && isShownOnline(previous.status) && isShownOnline(presence.status)) {
      log(`${presence.userId} is now ${presence.status}`);
    }
    flash(presence.userId);
    renderFriends();
  });
  client.on("friendAdded", (p) => log(`${p.userId} is now your friend`));
  client.on("friendRemoved", (id) => {
    log(`${id} is no longer your friend`);
    renderFriends();
  });
  client.on("friendRequest", (r) => {
    log(r.direction === "incoming" ? `${r.userId} wants to be friends${r.message ? `: “${r.message}”` : ""}` : `request sent to ${r.userId}`);
    void renderRequests();
  });
  client.on("friendRequestEnded", (r) => {
    log(`request ${r.direction === "incoming" ? "from" : "to"} ${r.userId} ${r.reason}`);
    void renderRequests();
  });
  client.on("friendAdded", () => void renderRequests());
  client.on("self", renderSelf);
  client.on("error", (e) => log(`error ${e.code}: ${e.message}`));

  try {
    await client.ready(15_000);
    await client.listFriends();
    await renderRequests();
  } catch (error) {
    log(`could not load friends: ${error.message}`);
  }
  renderFriends();
}

function signOut() {
  closeRealms();
  myRealm = null;
  client?.close();
  client = null;
  appliedStatus = null;
  shownClearsAt = null;
  me = null;
  setConnection("closed");
  $("connection").textContent = "signed out";
  $("app").hidden = true;
  $("sign-in").hidden = false;
  $("me-name").hidden = true;
  $("sign-out").hidden = true;
  $("friends").replaceChildren();
  $("follow-choices").replaceChildren();
  $("following-note").hidden = true;
  document.title = "edge-presence · demo";
}

async function publish() {
  if (!client) return;
  const { position, realm, status, statusText } = readForm();
  const clear = $("clear-after").value;
  const choice = JSON.stringify([status, statusText, clear]);
  myRealm = realm;
  syncRealms();
  try {
    if (choice === appliedStatus) await client.heartbeat({ position, realm, status, statusText });
    else {
      appliedStatus = choice;
      await client.heartbeat({ position, realm });
      await client.setStatus(status, statusText, clearAfter(clear));
      renderSelf();
    }
  } catch (error) {
    log(`update failed: ${error.message}`);
  }
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void signIn($("user-id").value.trim());
});
$("sign-out").addEventListener("click", signOut);
$("status-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void publish();
});
$("status").addEventListener("change", () => void publish());
$("clear-after").addEventListener("change", () => void publish());
$("follow-apply").addEventListener("click", () => void follow([...$("follow-choices").querySelectorAll("input:checked")].map((i) => i.value)));
$("follow-all").addEventListener("click", () => {
  for (const input of $("follow-choices").querySelectorAll("input")) input.checked = true;
  void follow("all");
});
$("last-seen").addEventListener("change", async () => {
  try {
    applyPrivacy(await client.setLastSeen($("last-seen").value));
    log(`last seen: ${{ all: "all friends", chosen: "friends you choose", none: "nobody" }[privacy.lastSeen]}`);
  } catch (error) {
    log(`last seen: ${error.code ?? error.message}`);
  }
});
for (const button of document.querySelectorAll("[data-move]")) {
  button.addEventListener("click", () => {
    const [dx, dy, dz] = button.dataset.move.split(",").map(Number);
    for (const [id, d] of [
      ["pos-x", dx],
      ["pos-y", dy],
      ["pos-z", dz],
    ])
      $(id).value = String(Number($(id).value || 0) + d);
    void publish();
  });
}
$("request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const userId = $("request-id").value.trim();
  try {
    const result = await client.sendFriendRequest(userId);
    $("request-result").textContent = result.state === "friends" ? `${userId} had asked you too: you are friends.` : `Request sent to ${userId}.`;
  } catch (error) {
    $("request-result").textContent = error.code === "user_not_found" ? `No user ${userId}.` : (error.message ?? "failed");
  }
  void renderRequests();
});
$("befriend-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const friend = $("friend-id").value.trim();
  const res = await fetch("/v1/admin/friendships", {
    method: "PUT",
    headers: { Authorization: `Bearer ${$("admin-token").value}`, "Content-Type": "application/json" },
    body: JSON.stringify({ a: me, b: friend }),
  });
  const body = await res.json().catch(() => ({}));
  $("befriend-result").textContent = res.ok ? `${me} and ${friend} are friends.` : (body?.error?.message ?? `failed (${res.status})`);
  if (res.ok) await client?.listFriends().catch(() => {});
  renderFriends();
});
// A closing tab says goodbye, so friends see it offline at once rather than after the TTL.
addEventListener("pagehide", () => {
  closeRealms();
  client?.close();
});
setInterval(renderFriends, 5_000);

const params = new URLSearchParams(location.search);
const preset = params.get("user") ?? localStorage.getItem("edge-presence-user");
if (preset) $("user-id").value = preset;
if (params.get("user")) void signIn(params.get("user"));
