// The agents' inbox page: sign-in, the header, queues (and the supervisors'
// overview), the live event stream, keyboard shortcuts. The thread view is
// in thread.js.

import { api, all, onUnauthorized, now } from './api.js';
import { connect } from './live.js';
import { h, $, $$, clear, networkBadge, priorityBadge, since, slaBadge, tick, countdown } from './dom.js';
import { state, hooks, nameOf, myName, isPerson, canSupervise, grantFrom, saveEngaged, wasEngaged, loadDrafts, forgetDrafts } from './state.js';
import * as thread from './thread.js';

let live = null;
let timers = [];

// --- messages to people ---

// showAlert says what went wrong. A background alert (a load that
// failed: queues, statistics, a thread read again) does not replace one
// about something the person did, such as a reply that may not have gone
// out: loads fail together when the server goes, and the last would hide
// the one that matters. It says it again on the next failed load.
// An alert may offer one action ({label, run}), a button beside it.
let alertBackground = false;
let alertRun = null;
function showAlert(msg, background = false, action = null) {
  if (background && !alertBackground && $('#alert').textContent) return;
  $('#alert').textContent = msg || '';
  alertBackground = background && Boolean(msg);
  $('#alert-dismiss').hidden = !msg;
  alertRun = msg && action ? action.run : null;
  $('#alert-action').textContent = alertRun ? action.label : '';
  $('#alert-action').hidden = !alertRun;
}

let infoTimer = 0;
function showInfo(msg) {
  $('#status-msg').textContent = msg || '';
  clearTimeout(infoTimer);
  if (msg) infoTimer = setTimeout(() => { $('#status-msg').textContent = ''; }, 10000);
}

function teamName(id) {
  const t = state.teams.get(id);
  return t ? t.name : id;
}

function authorName(t) {
  const a = (t && t.author) || {};
  return a.name || a.handle || a.id || 'customer';
}

// --- session ---

async function boot() {
  $('#signin').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', askSignOut);
  $('#signout-yes').addEventListener('click', () => {
    signOutAsked(false);
    signOut();
  });
  $('#signout-no').addEventListener('click', () => {
    signOutAsked(false);
    $('#signout').focus();
  });
  $('#signout-confirm').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') $('#signout-no').click();
  });
  $('#status').addEventListener('change', () => setStatusSoon());
  $('#status').addEventListener('blur', () => flushStatus());
  // A status chosen just before the page closes is still set.
  addEventListener('pagehide', () => flushStatus({ keepalive: true }));
  $('#alert-dismiss').addEventListener('click', () => showAlert(''));
  $('#alert-action').addEventListener('click', () => {
    const run = alertRun;
    ($('#thread-h') || $('#inbox-h')).focus(); // the button goes with the alert
    showAlert('');
    if (run) run();
  });
  $('#claim-next').addEventListener('click', () => thread.claimNext(state.selected));
  document.addEventListener('keydown', shortcut);
  addEventListener('focus', refreshMeSoon);
  $('#single-keys').checked = singleKeys;
  $('#single-keys').addEventListener('change', setSingleKeys);
  addEventListener('hashchange', () => {
    if (!state.me) return;
    const id = threadInHash();
    if (id && id !== state.openId) thread.openThread(id);
    else if (!id && state.openId) thread.closeThread();
  });
  // What the person does, not what the page does: the page moves the
  // focus itself when it redraws, and a busy inbox would count as someone
  // at the desk. A focus counts when the window gets it (back to the tab).
  for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart', 'focus']) {
    addEventListener(type, (e) => {
      if (type === 'focus' && e.target !== window) return;
      state.lastActivity = Date.now();
      if (state.paused) carryOn();
    }, { passive: true, capture: true });
  }
  onUnauthorized(() => endSession('Your session has ended or your key was revoked. Sign in again.'));
  Object.assign(hooks, {
    refreshQueues, renderMine, alert: showAlert, info: showInfo, markOpen, focusQueue,
    openThread: thread.openThread, lose: thread.lose,
  });
  resume();
}

// resume picks up the session this browser has (its cookie). Only a 401
// means it has none: anything else (a server restarting, a rate limit) is
// tried again, with the sign-in form shown meanwhile in case another key
// is meant.
let resumeTimer = 0;
let resumeTries = 0;
let signIns = 0; // sign-ins with a key on this page
async function resume() {
  resumeTimer = 0;
  const n = signIns;
  try {
    const me = await api('GET', '/me', undefined, { quiet401: true });
    if (n !== signIns) return; // someone signed in with a key meanwhile
    await startSession(me);
  } catch (e) {
    if (n !== signIns || state.me) return; // signed in meanwhile
    if (e.status === 401) {
      showSignIn('');
      return;
    }
    const wait = e.retryAfter || Math.min(2 ** resumeTries++, 30);
    showSignIn(`Your inbox could not be loaded: ${thread.describe(e)} Trying again in ${wait} s.`);
    resumeTimer = setTimeout(resume, wait * 1000);
  }
}

function showSignIn(msg) {
  $('#app').hidden = true;
  $('#who').hidden = true;
  $('#controls').hidden = true;
  $('#shortcuts').hidden = true;
  $('#conn-banner').hidden = true;
  $('#signin-view').hidden = false;
  $('#signin-msg').textContent = msg || '';
  showInfo(''); // what the page last said was about the session that ended
  document.body.classList.remove('thread-open');
  $('#key').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('#key');
  const btn = $('#signin-submit');
  // The key goes into the request body and nowhere else: the field is
  // emptied at once and the body object is dropped after the request.
  let body = { key: input.value.trim() };
  input.value = '';
  if (!body.key) {
    $('#signin-msg').textContent = 'Enter your key.';
    return;
  }
  btn.disabled = true;
  clearTimeout(resumeTimer);
  signIns++; // a resume under way gives way to this sign-in
  $('#signin-msg').textContent = '';
  try {
    const me = await api('POST', '/session', body, { quiet401: true });
    body = null;
    await startSession(me);
    if (state.me) {
      // The sign-in form is gone: focus and say where the agent is now.
      ((state.openId && $('#thread-h')) || $('#inbox-h')).focus();
      if (!isPerson()) showInfo(`Signed in with an ${state.me.role} key.`);
      else if (state.me.status === 'online') showInfo(`Signed in as ${myName()}.`);
      else showInfo(`Signed in as ${myName()}. You are ${state.me.status}: no thread is offered to you until you set your status to Online.`);
    }
  } catch (e) {
    body = null;
    $('#signin-msg').textContent = e.status === 401
      ? 'That key was not accepted. Check it and try again.'
      : e.status === 400 ? 'Enter your key.' : thread.describe(e);
    input.focus();
  } finally {
    btn.disabled = false;
  }
}

// askSignOut signs out, first asking in place when replies typed and not
// sent would go with the session (signing out removes the drafts the tab
// keeps). The focus goes to Cancel, as in a thread's questions.
function askSignOut() {
  const n = [...state.drafts.keys()].filter(thread.unsent).length;
  if (!n) {
    signOut();
    return;
  }
  $('#signout-q').textContent = `${n === 1 ? 'A reply you typed is' : `${n} replies you typed are`} not sent and will be lost. Sign out anyway?`;
  signOutAsked(true);
  $('#signout-no').focus();
}

function signOutAsked(asked) {
  $('#signout').hidden = asked;
  $('#signout-confirm').hidden = !asked;
}

// signOut ends the session. A person leaving is set offline first, so
// nothing more is offered to them (an offer would wait for its lock to run
// out), then the threads they hold are released: colleagues get them now.
async function signOut() {
  await flushStatus();
  let released = 0;
  let kept = 0;
  try {
    if (isPerson()) {
      await api('PUT', `/agents/${encodeURIComponent(state.me.id)}/status`, { status: 'offline' }, { quiet401: true });
      await Promise.all([...state.held].map(([id, held]) => api('POST', `/threads/${id}/release`, { token: held.token }, { quiet401: true })
        .then(() => { released++; }, (e) => {
          if (e.code !== 'lock_lost') kept++; // lost meanwhile: no longer ours to release
        })));
    }
    await api('DELETE', '/session', undefined, { quiet401: true });
  } catch (e) {
    if (e.status !== 401) {
      showAlert(`Signing out failed: ${thread.describe(e)}`);
      return;
    }
  }
  let threads = { 0: '', 1: ' The thread you held was released.' }[released] ?? ` The ${released} threads you held were released.`;
  if (kept) threads += ` ${kept === 1 ? 'One' : kept} could not be released: ${kept === 1 ? 'it stays' : 'they stay'} locked until ${kept === 1 ? 'its lock runs' : 'their locks run'} out.`;
  forgetDrafts();
  endSession(isPerson() ? `You are signed out and offline.${threads}` : 'You are signed out.');
}

function endSession(msg) {
  if (!state.me) return;
  sessionGen++; // a start still loading stops
  clearTimeout(statusTimer);
  statusTimer = 0;
  if (live) live.close();
  live = null;
  state.paused = false;
  $('#idle-banner').hidden = true;
  for (const t of timers) clearInterval(t);
  timers = [];
  thread.closeThread();
  thread.reset();
  state.me = null;
  state.held.clear(); // tokens are gone with the session
  // Drafts go from memory; the tab keeps them for this agent's next
  // session (an expired one, a revoked key) unless they signed out.
  state.drafts.clear();
  saveEngaged(); // none now
  state.sent.clear(); // the next person signed in did not send them
  state.queues.clear();
  state.savedReplies.clear();
  state.people.clear();
  state.agents = [];
  state.stats = null;
  showAlert('');
  signOutAsked(false);
  showSignIn(msg);
}

// sessionGen counts the sessions started on this page: a start that a
// later one overtook (a resume still loading when someone signed in with
// a key) stops at its next step instead of drawing the earlier person.
let sessionGen = 0;

async function startSession(me) {
  if (state.me) endSession(''); // this start replaces one under way
  const gen = ++sessionGen;
  if (!me || me.role === 'ingest') {
    await api('DELETE', '/session', undefined, { quiet401: true }).catch(() => {});
    showSignIn('That is a connector (ingest) key. Sign in with an agent or supervisor key.');
    return;
  }
  state.me = me;
  let teams, people, locks;
  try {
    [teams, people, locks] = await Promise.all([
      all('/teams'),
      all('/me/colleagues').catch(() => []),
      isPerson() ? all('/me/locks') : [],
    ]);
  } catch (e) {
    if (gen === sessionGen) state.me = null; // not signed in until all of it is read
    throw e;
  }
  if (gen !== sessionGen) return;
  loadDrafts(); // once signed in: a start that failed shows the sign-in form
  state.teams = new Map(teams.map((t) => [t.id, t]));
  state.people = new Map(people.map((p) => [p.id, p.name]));
  if (me.id) state.people.set(me.id, me.name || me.id);
  state.tabs = tabsOf(teams);
  state.selected = state.tabs[0] || '';
  state.held.clear();
  for (const l of locks) {
    state.held.set(l.thread.id, grantFrom(l.lock, l.thread, now(),
      wasEngaged(l.thread.id, Number(l.lock.fence)) || l.thread.id === threadInHash()));
  }

  $('#signin-view').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#controls').hidden = false;
  $('#shortcuts').hidden = false;
  $('#signin-msg').textContent = '';
  renderHeader();
  renderTabs();
  renderQueue();
  renderMine();
  $('#overview').hidden = !canSupervise();
  $('#app').classList.toggle('with-overview', canSupervise());
  $('#claim-next').hidden = !isPerson();
  document.body.classList.toggle('not-person', !isPerson());

  liveBadge('Connecting…', 'connecting');
  live = connect({ onEvent, onState: liveState, check: () => api('GET', '/me') });
  timers.push(setInterval(everySecond, 1000));
  if (canSupervise()) timers.push(setInterval(loadStats, 30000));
  timers.push(setInterval(refreshMe, 60000)); // status, shift and teams change by themselves
  timers.push(setInterval(loadStaleQueues, staleEvery));
  await Promise.all([loadQueues(), canSupervise() ? loadStats() : null, loadAgents()]);
  if (gen !== sessionGen) return;
  const id = threadInHash();
  if (id) await thread.openThread(id, 'heading');
}

// threadInHash is the thread id in the address (#t/<id>): a link to a
// thread, and what a reload reopens. It holds no secret.
function threadInHash() {
  const m = /^#t\/([\w-]+)$/.exec(location.hash);
  return m ? m[1] : '';
}

// --- header ---

function renderHeader() {
  const me = state.me;
  $('#me-name').textContent = myName();
  $('#me-role').textContent = { supervisor: 'Supervisor', agent: 'Agent', admin: 'Admin' }[me.role] || me.role;
  $('#me-teams').textContent = me.role === 'admin' ? 'all teams'
    : (me.teams || []).map(teamName).join(', ') || 'none';
  $('#status-wrap').hidden = !isPerson();
  if (isPerson()) $('#status').value = me.status || 'offline';
  const shift = $('#on-shift');
  shift.hidden = !isPerson();
  shift.textContent = me.on_shift ? 'On shift' : 'Off shift';
  shift.className = `badge ${me.on_shift ? 'on' : 'off'}`;
}

async function refreshMe() {
  if (state.paused) return;
  try {
    const me = await api('GET', '/me');
    if (!state.me || me.id !== state.me.id) return;
    const teamsBefore = JSON.stringify(state.me.teams || []);
    state.me = { ...state.me, ...me };
    if (document.activeElement !== $('#status')) renderHeader();
    if (canSupervise() || JSON.stringify(me.teams || []) !== teamsBefore) await Promise.all([retab(), loadAgents()]);
  } catch {
    // a 401 ends the session; anything else waits for the next round
  }
}

// loadAgents reads every agent, for a supervisor's "Offer to" (their teams,
// networks and status say who may take a thread).
async function loadAgents() {
  if (!canSupervise() || state.paused) return;
  try {
    const agents = await all('/agents');
    if (!state.me) return;
    state.agents = agents;
    if (state.openId) thread.render(false);
  } catch {
    // the list is a convenience; the next round reads it again
  }
}

// tabsOf is the teams with a tab: every team for supervisors and admins,
// the agent's own (that exist) for agents.
function tabsOf(teams) {
  const ids = new Set(teams.map((t) => t.id));
  return canSupervise() ? [...ids] : (state.me.teams || []).filter((id) => ids.has(id));
}

// retab follows the teams: an agent added to a team or taken out of one
// (or, for supervisors, a team created or deleted) gets their tabs without
// a reload.
async function retab() {
  const teams = await all('/teams');
  if (!state.me) return;
  state.teams = new Map(teams.map((t) => [t.id, t]));
  const tabs = tabsOf(teams);
  if (JSON.stringify(tabs) === JSON.stringify(state.tabs)) return;
  const added = tabs.filter((id) => !state.tabs.includes(id));
  state.tabs = tabs;
  if (!tabs.includes(state.selected)) state.selected = tabs[0] || '';
  // Not over a status the agent is choosing (see setStatusSoon).
  if (document.activeElement !== $('#status') && !statusTimer) renderHeader();
  renderTabs();
  renderQueue();
  const load = qStale.has(state.selected) && !added.includes(state.selected) ? [...added, state.selected] : added;
  if (load.length) loadQueues(load);
}

// refreshMeSoon reads the agent again when they come back to the page, at
// most every 5 s.
let meAt = 0;
function refreshMeSoon() {
  if (!state.me || Date.now() - meAt < 5000) return;
  meAt = Date.now();
  refreshMe();
}

// setStatusSoon sets the status chosen a moment ago (or at once when the
// switch loses focus, see flushStatus): arrow keys on the closed switch
// change its value one option at a time, and each would have changed who
// gets threads (away, then offline) on its way.
let statusTimer = 0;
function setStatusSoon() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => {
    statusTimer = 0;
    setStatus();
  }, 800);
}

// flushStatus sets a status chosen and not yet sent, now.
function flushStatus(opts) {
  if (!statusTimer) return null;
  clearTimeout(statusTimer);
  statusTimer = 0;
  return setStatus(opts);
}

async function setStatus(opts = {}) {
  const sel = $('#status');
  if (!state.me) return;
  if (sel.value === state.me.status && !state.me.idle_away) return; // an away of idleness becomes the agent's own
  const prev = state.me.status;
  try {
    const a = await api('PUT', `/agents/${encodeURIComponent(state.me.id)}/status`, { status: sel.value }, opts);
    if (!state.me) return;
    state.me = { ...state.me, ...a };
    renderHeader();
    showInfo(`Your status is now ${sel.value}.`);
  } catch (err) {
    sel.value = prev;
    if (err.status !== 401) showAlert(`Your status was not changed: ${thread.describe(err)}`);
  }
}

// --- queues ---

let qTimer = 0;
let qRunning = false;
let qAgain = false;
let qLast = 0; // when the last load started
let queueAlert = ''; // the alert a failed load showed
const qStale = new Set(); // tabs whose queue may have changed since loaded

// Queues follow events at most once a second, and only the tab on screen:
// every page reloading every tab within 200 ms of each event made the
// server's load grow with agents x tabs x events (and a supervisor with
// many teams ran into their own rate limit). The other tabs are marked
// stale, loaded when selected, and every staleEvery for their counts.
const queueEvery = 1000;
const staleEvery = 15000;

// refreshQueues loads the queue on screen: at once after a quiet second,
// else a second after the last load began. A pending load takes in every
// change before it, so changes arriving steadily do not put it off.
function refreshQueues() {
  for (const id of state.tabs) qStale.add(id);
  if (qTimer) return;
  qTimer = setTimeout(() => {
    qTimer = 0;
    loadQueues([state.selected]);
  }, Math.max(0, qLast + queueEvery - Date.now()));
}

// loadStaleQueues loads the tabs changed since loaded: those off screen,
// and the one on screen if its last load failed.
function loadStaleQueues() {
  const ids = state.tabs.filter((id) => qStale.has(id));
  if (ids.length) loadQueues(ids);
}

async function loadQueues(ids = state.tabs) {
  if (!state.me || state.paused) return;
  if (qRunning) {
    qAgain = true;
    return;
  }
  qRunning = true;
  qLast = Date.now();
  try {
    const failed = [];
    let changed = false;
    await Promise.all(ids.filter(Boolean).map(async (id) => {
      qStale.delete(id);
      try {
        const p = await api('GET', `/queue?team=${encodeURIComponent(id)}&limit=100`);
        const q = { items: p.items || [], more: Boolean(p.next_cursor) };
        if (JSON.stringify(q) !== JSON.stringify(state.queues.get(id))) changed = true;
        state.queues.set(id, q);
      } catch (e) {
        qStale.add(id);
        if (e.status !== 401) failed.push(`${teamName(id)}: ${thread.describe(e)}`);
      }
    }));
    if (!state.me) return;
    if (failed.length) {
      queueAlert = `Some queues could not be loaded. ${failed.join(' ')}`;
      showAlert(queueAlert, true);
    } else if (queueAlert) {
      // Loaded again: the alert about the failed load is out of date.
      if ($('#alert').textContent === queueAlert) showAlert('');
      queueAlert = '';
    }
    // Redrawn only when something changed, so an item is not replaced
    // under the pointer between press and release.
    if (changed) {
      renderTabs();
      renderQueue();
    }
  } finally {
    qRunning = false;
    if (qAgain) {
      qAgain = false;
      refreshQueues();
    }
  }
}

function selectTeam(id) {
  state.selected = id;
  renderTabs();
  renderQueue();
  if (qStale.has(id) || !state.queues.has(id)) loadQueues([id]);
}

function renderTabs() {
  const ul = $('#team-tabs');
  const focused = document.activeElement && ul.contains(document.activeElement) ? document.activeElement.dataset.team : null;
  clear(ul);
  for (const id of state.tabs) {
    const q = state.queues.get(id);
    const n = q ? `${q.items.length}${q.more ? '+' : ''}` : '…';
    ul.append(h('li', {},
      h('button', { type: 'button', class: 'tab', 'aria-pressed': String(id === state.selected), dataset: { team: id }, onclick: () => selectTeam(id) },
        teamName(id), ' ', h('span', { class: 'count' }, n), h('span', { class: 'visually-hidden' }, ' waiting'))));
  }
  if (focused) ul.querySelector(`[data-team="${CSS.escape(focused)}"]`)?.focus();
  if (!state.tabs.length) ul.append(h('li', { class: 'none' }, 'You are in no team yet. Ask an admin to add you to one.'));
  $('#claim-next').textContent = '';
  $('#claim-next').append(`Claim next${state.selected ? ` in ${teamName(state.selected)}` : ''} `, h('kbd', {}, 'N'));
}

function renderQueue() {
  const list = $('#queue-list');
  const active = document.activeElement;
  const keep = active && list.contains(active) ? { id: active.closest('li')?.dataset.thread, cls: active.className } : null;
  clear(list);
  const q = state.queues.get(state.selected);
  if (!state.selected) return;
  list.setAttribute('aria-label', `${teamName(state.selected)} queue`);
  if (!q) list.append(h('li', { class: 'none' }, 'Loading…'));
  else if (!q.items.length) list.append(h('li', { class: 'none' }, 'Nobody is waiting in this queue.'));
  else for (const t of q.items) list.append(queueItem(t));
  if (q && q.more) list.append(h('li', { class: 'none' }, 'More threads are waiting than shown here; claim next takes them in order.'));
  if (keep && keep.id) {
    const el = list.querySelector(`li[data-thread="${CSS.escape(keep.id)}"] .${keep.cls.split(' ')[0]}`);
    if (el) el.focus();
    else list.querySelector('.qopen')?.focus();
  }
  tick(list);
}

function queueItem(t) {
  const a = t.author || {};
  const name = authorName(t);
  return h('li', { class: 'qitem', dataset: { thread: t.id } },
    h('button', { type: 'button', class: 'qopen', 'aria-current': t.id === state.openId ? 'true' : false, onclick: () => thread.openThread(t.id) },
      h('span', { class: 'qline' }, networkBadge(t.network), ' ', t.priority !== 'normal' ? [priorityBadge(t.priority), ' '] : null,
        h('strong', { class: 'author', dir: 'auto' }, name), a.handle && a.handle !== name ? h('span', { class: 'handle' }, ` ${a.handle}`) : null),
      h('span', { class: 'preview', dir: 'auto' }, t.preview || (t.preview === '' ? '(attachment)' : '')),
      h('span', { class: 'qline small' }, since(t.waiting_since), ' ', slaBadge(t),
        (t.tags || []).map((tag) => [' ', h('span', { class: 'tag' }, tag)]))),
    isPerson() ? h('button', { type: 'button', class: 'qclaim', 'aria-label': `Claim the thread of ${name}`, onclick: () => thread.claim(t.id) }, 'Claim') : null);
}

// markOpen marks the button that opened the thread on screen as current:
// the button, where focus is, so a screen reader says it.
function markOpen() {
  for (const b of $$('#queue-list li[data-thread] .qopen, #mine-list li[data-thread] .mine-open')) {
    if (b.closest('li').dataset.thread === state.openId) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

function focusQueue() {
  ($('#queue-list .qopen') || $('#claim-next') || $('#inbox-h')).focus();
}

// --- your threads ---

function renderMine() {
  saveEngaged(); // every change to what is held is drawn here
  const sec = $('#mine');
  sec.hidden = !isPerson();
  const focused = focusedRow($('#mine-list'), 'thread');
  const ul = clear($('#mine-list'));
  if (!isPerson()) return;
  if (!state.held.size) {
    ul.append(h('li', { class: 'none' }, 'You hold no threads. Claim one from a queue.'));
    return;
  }
  for (const [id, held] of state.held) {
    const t = held.thread || {};
    ul.append(h('li', { dataset: { thread: id } },
      h('button', { type: 'button', class: 'mine-open', 'aria-current': id === state.openId ? 'true' : false, onclick: () => thread.openThread(id, 'reply') },
        networkBadge(t.network), ' ', h('strong', { dir: 'auto' }, authorName(t)), ' ',
        h('span', { class: 'lock-left' }, held.engaged ? null : 'offered · ',
          h('span', { dataset: { until: new Date(held.expiresAt).toISOString() } }, countdown(held.expiresAt - now())), ' left'))));
  }
  refocusRow(ul, 'thread', focused);
}

// recoverLocks reads the locks held by the agent: new ones were offered,
// or claimed in another window (claimed: that thread's id).
async function recoverLocks(claimed = '') {
  if (!isPerson() || state.paused) return;
  let locks;
  try {
    locks = await all('/me/locks');
  } catch {
    return;
  }
  const fresh = [];
  for (const l of locks) {
    const cur = state.held.get(l.thread.id);
    // A grant this page let go of while the read was under way is not new.
    if (state.held.endedHere(l.thread.id, Number(l.lock.fence))) continue;
    if (!cur || cur.fence !== Number(l.lock.fence)) {
      // A new grant: taken up if we claimed it (in another window) or it
      // is the thread on screen; otherwise an offer.
      state.held.set(l.thread.id, grantFrom(l.lock, l.thread, now(), l.thread.id === claimed || l.thread.id === state.openId));
      fresh.push(l.thread);
    }
  }
  renderMine();
  if (fresh.length) {
    const names = fresh.map(authorName).join(', ');
    showInfo(fresh.some((t) => t.id === claimed) ? `You claimed the thread of ${names} in another window.` : `A thread is waiting for you: ${names}.`);
    if (fresh.some((t) => t.id === state.openId)) thread.refresh();
  }
}

// --- supervisors' overview ---

let statsTimer = 0;
function refreshStatsSoon() { // at most a second after a change, as refreshQueues
  if (statsTimer) return;
  statsTimer = setTimeout(() => {
    statsTimer = 0;
    loadStats();
  }, 1000);
}

async function loadStats() {
  if (!canSupervise() || state.paused) return;
  try {
    state.stats = await api('GET', '/stats');
    state.statsAt = now(); // the server's clock, as tick() reads it
  } catch (e) {
    if (e.status !== 401) showAlert(`Team statistics could not be loaded: ${thread.describe(e)}`, true);
    return;
  }
  renderOverview();
}

// focusedRow is the key (the attr data attribute) of the row of list
// holding the focus, so a redraw can give it back (a redraw dropped the
// focus to the page's top).
function focusedRow(list, attr) {
  const a = document.activeElement;
  const row = a && list.contains(a) ? a.closest(`[data-${attr}]`) : null;
  return row ? row.getAttribute(`data-${attr}`) : null;
}

function refocusRow(list, attr, key) {
  if (key !== null) list.querySelector(`[data-${attr}="${CSS.escape(key)}"] button`)?.focus();
}

function renderOverview() {
  const focused = focusedRow($('#overview-rows'), 'team');
  const body = clear($('#overview-rows'));
  const byTeam = new Map((state.stats.teams || []).map((s) => [s.team, s]));
  const ids = [...new Set([...state.teams.keys(), ...byTeam.keys()])].sort();
  for (const id of ids) {
    const s = byTeam.get(id) || { queued: 0, assigned: 0, oldest_wait_seconds: 0, on_shift_agents: 0, sla_breaches: 0 };
    body.append(h('tr', { dataset: { team: id } },
      h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => selectTeam(id) }, teamName(id))),
      h('td', { class: 'queued' }, String(s.queued)),
      h('td', { class: 'assigned' }, String(s.assigned)),
      h('td', { class: 'oldest', dataset: { waitbase: String(s.queued ? s.oldest_wait_seconds : 0), at: String(state.statsAt) } }, '—'),
      h('td', {}, String(s.on_shift_agents)),
      h('td', { class: s.sla_breaches ? 'breach' : '' }, String(s.sla_breaches))));
  }
  refocusRow(body, 'team', focused);
  tick(body);
}

// --- live ---

let openTimer = 0;
// refreshOpenSoon reloads the open thread at most every 150 ms: a throttle,
// not a debounce, which a busy thread's events kept putting off.
function refreshOpenSoon() {
  if (openTimer) return;
  openTimer = setTimeout(() => {
    openTimer = 0;
    thread.refresh();
  }, 150);
}

function onEvent(ev) {
  if (!state.me) return;
  refreshQueues();
  if (canSupervise()) refreshStatsSoon();
  const id = ev.thread_id;
  const d = ev.data || {};
  const me = state.me.id;
  if (state.held.has(id)) heldEvent(ev);
  else if (isPerson() && ((d.to_agent === me || ev.agent_id === me) || (ev.type === 'thread.claimed' && d.agent_id === me))) {
    recoverLocks(ev.type === 'thread.claimed' ? id : ''); // an offer to us, or a claim from another window
  }
  if (id === state.openId) {
    if (ev.type === 'message.deleted' || ev.type === 'message.edited' || ev.type === 'message.delivery') thread.messageChanged(d.message_id);
    refreshOpenSoon();
  } else if (ev.type === 'message.delivery' && d.status === 'failed' && state.sent.has(d.message_id)) {
    // A reply this page sent, in a thread no longer on screen (released,
    // closed, or another one opened since): the open thread says its own.
    const { to } = state.sent.get(d.message_id);
    showAlert(`Your reply to ${to} was not delivered${d.error ? `: ${d.error}` : ''}. Open that thread to answer another way.`);
  }
}

// heldEvent reacts at once to an event on a thread this page holds: any
// sign that the lock ended takes the reply box away before anything else.
function heldEvent(ev) {
  const id = ev.thread_id;
  const held = state.held.get(id);
  const d = ev.data || {};
  const me = state.me.id;
  const fence = d.fence === undefined ? null : Number(d.fence);
  switch (ev.type) {
    case 'thread.claimed':
    case 'thread.offered':
      if (fence !== null && fence > held.fence) {
        const who = d.agent_id || d.to_agent;
        if (who === me) {
          state.held.delete(id);
          recoverLocks();
        } else thread.lose(id, `${nameOf(who)} holds it now.`);
      }
      break;
    case 'lock.expired':
      if (fence === null || fence === held.fence) thread.expired(id, true);
      break;
    case 'thread.unlocked':
      thread.lose(id, `${nameOf(ev.actor)} broke your lock.`);
      break;
    case 'thread.assigned':
      if ((d.agent_id || d.to_agent) === me) {
        // Assigned to us again: a new lock replaces ours.
        state.held.delete(id);
        recoverLocks();
      } else if (ev.actor === me) {
        forgetOwn(id); // our own offer to a colleague (a supervisor's)
      } else thread.lose(id, `${nameOf(ev.actor)} assigned it to ${nameOf(d.agent_id || d.to_agent)}.`);
      break;
    case 'thread.erased':
      thread.lose(id, `${nameOf(ev.actor)} erased it and everything on it.`);
      break;
    case 'thread.released':
    case 'thread.closed':
    case 'thread.transferred':
      if (ev.actor === me) {
        forgetOwn(id); // from this window or another
      } else {
        const what = { 'thread.released': 'released it', 'thread.closed': 'closed it', 'thread.transferred': 'handed it over' }[ev.type];
        thread.lose(id, `${nameOf(ev.actor)} ${what}.`);
      }
      break;
    default:
  }
}

// forgetOwn forgets a lock that our own step ended: no news to anyone.
function forgetOwn(id) {
  state.held.delete(id);
  renderMine();
  if (state.openId === id) thread.render();
}

// liveBadge says in the header how live the page is (kind: a class of
// .badge.live, '' for live).
function liveBadge(text, kind = '') {
  const badge = $('#live-state');
  badge.textContent = text;
  badge.className = `badge live ${kind}`.trim();
}

function liveState(s, wasDown, gap) {
  if (s === 'open') {
    $('#conn-banner').hidden = true;
    liveBadge('Live');
    if (wasDown) showInfo('Reconnected. Live updates are back.');
    // A message or an offer that came after the page read its queues and
    // locks, and before the stream was taken on, is in neither.
    if (wasDown || gap) resync();
  } else {
    $('#conn-banner').hidden = false;
    liveBadge('Offline', 'down');
  }
}

// resync reloads what may have changed while the stream was down.
async function resync() {
  refreshQueues();
  if (canSupervise()) refreshStatsSoon();
  await recoverLocks();
  await Promise.all([...state.held.keys()].map(async (id) => {
    try {
      thread.checkHeld(await api('GET', `/threads/${id}`));
    } catch (e) {
      if (e.code === 'not_found') thread.lose(id, 'It is no longer in your teams.');
    }
  }));
  if (state.openId) thread.refresh();
}

function everySecond() {
  tick(document);
  thread.renewDue();
  if (!state.paused && isPerson() && Date.now() - state.lastActivity > IDLE_MS) pause();
}

// IDLE_MS is how long without a key, click or touch before the page
// pauses (window.switchboardIdleMs sets it, for tests). An open page is
// presence to the server (its event stream, its requests), so an agent who
// left it open would stay online, and offers would go to an empty desk.
// Paused, the page closes its stream and asks the server nothing, so the
// presence sweep sets the agent away (--presence-ttl later); their next
// key or click carries on, and their first request sets them online again.
const IDLE_MS = Number(globalThis.switchboardIdleMs) || 10 * 60 * 1000;

function pause() {
  state.paused = true;
  if (live) live.pause();
  for (const t of [qTimer, statsTimer, openTimer]) clearTimeout(t);
  qTimer = statsTimer = openTimer = 0;
  $('#idle-banner').hidden = false;
  liveBadge('Paused', 'down');
}

function carryOn() {
  state.paused = false;
  $('#idle-banner').hidden = true;
  if (!state.me) return;
  refreshMe();
  // From the last event seen: what happened meanwhile. And what the stream
  // no longer holds, read here unless the stream reads it all once open.
  if (!live || live.resume()) resync();
}

// --- keyboard ---

// singleKeys: the one-letter shortcuts are on (a setting kept in this
// browser): speech input and stray keys can set them off by mistake, so
// they can be turned off.
let singleKeys = localStorage.getItem('switchboard.singleKeys') !== 'off';

function setSingleKeys(e) {
  singleKeys = e.target.checked;
  localStorage.setItem('switchboard.singleKeys', singleKeys ? 'on' : 'off');
  showInfo(singleKeys ? 'Single-key shortcuts are on.' : 'Single-key shortcuts are off.');
}

function shortcut(e) {
  if (!state.me) return;
  const t = e.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  if (typing) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && t.id === 'reply-text') {
      e.preventDefault();
      $('#reply-form').requestSubmit();
    } else if (e.key === 'Escape' && t.tagName !== 'SELECT') {
      t.blur();
      ($('#thread-h') || $('#inbox-h')).focus();
    }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || !singleKeys) return;
  switch (e.key.toLowerCase()) {
    case 'n':
      if (!isPerson()) return;
      e.preventDefault();
      thread.claimNext(state.selected);
      break;
    case 'c':
      if (!$('#claim-this')) return;
      e.preventDefault();
      $('#claim-this').click();
      break;
    case 'r':
      if (!$('#reply-text')) return;
      e.preventDefault();
      $('#reply-text').focus();
      break;
    case 'u':
      // The button: with a reply typed and not sent, it asks first.
      if (!$('#act-release')) return;
      e.preventDefault();
      $('#act-release').click();
      break;
    case 'j':
    case 'k': {
      const items = $$('#queue-list .qopen');
      if (!items.length) return;
      e.preventDefault();
      const i = items.indexOf(document.activeElement);
      const next = e.key.toLowerCase() === 'j' ? Math.min(i + 1, items.length - 1) : Math.max(i - 1, 0);
      items[i < 0 ? 0 : next].focus();
      break;
    }
    default:
  }
}

boot();
