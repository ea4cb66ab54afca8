// The thread view: conversation, lock, reply box, hand-off buttons, notes
// and audit trail. The reply box is shown only while this page holds the
// thread's lock (a token in state.held whose fence is the thread's current
// lock), so two browsers never both show one for the same thread.

import { api, all, now } from './api.js';
import {
  h, $, clear, networkBadge, networkName, priorityBadge, tagList, slaBadge, timeEl, clock, countdown,
  uuid, safeURL, tick,
} from './dom.js';
import { state, hooks, nameOf, isPerson, canSupervise, grantFrom, saveDrafts } from './state.js';

const LOST = 'You no longer hold this thread.';

// describe turns an API error into a sentence for people.
export function describe(e) {
  switch (e.code) {
    case 'lock_lost': return LOST;
    case 'lock_held': return `${nameOf(e.details.agent_id)} is replying to this thread (locked until ${clock(e.details.expires_at)}).`;
    case 'capacity_reached': return 'You already hold as many threads as you may (your capacity). Release one first.';
    case 'thread_closed': return 'This thread is closed.';
    case 'conflict': return 'The thread changed meanwhile. Try again.';
    case 'not_found': return 'That thread is not in your teams (it may have moved to another team).';
    case 'forbidden': return 'Your role does not allow this.';
    case 'rate_limited': return `Too many requests. Wait ${e.retryAfter || 1} s and try again.`;
    case 'unavailable': return 'The server cannot reach its store right now. Try again in a moment.';
    case 'network': return e.message;
    case 'invalid_request': return `The server refused this: ${e.message}.`;
    case 'unauthorized': return 'Your session has ended.';
    default: return e.message || 'Something went wrong.';
  }
}

// holding reports whether this page may reply on the thread now.
export function holding(id) {
  const held = state.held.get(id);
  if (!held || held.expiresAt <= now()) return false;
  // A lock newer than ours in what we last read ends ours; an older one
  // is only a read from before our grant (fences grow with every grant).
  const t = state.open && state.open.thread.id === id ? state.open.thread : held.thread;
  if (t && t.lock && Number(t.lock.fence) > held.fence) return false;
  return true;
}

// expired forgets a lock that ran out (sure: the server said so). Another
// window of the agent's may hold the same lock and renew it unseen here
// (an offer it opened, a thread this window stopped renewing while its
// agent worked in the other), so an end by this page's count is checked
// with the server first. An offer that did run out is no news that needs
// an alert: it went back to its queue, as ignored offers do.
export async function expired(id, sure = false) {
  const held = state.held.get(id);
  if (!held) return;
  if (!sure) {
    let locks;
    try {
      locks = await serverLocks();
    } catch {
      return; // asked again after serverLocks' pause
    }
    if (!locks || state.held.get(id) !== held) return;
    const l = locks.find((x) => x.thread.id === id);
    if (l && Date.parse(l.lock.expires_at) > now()) {
      if (Number(l.lock.fence) === held.fence) {
        held.expiresAt = Date.parse(l.lock.expires_at);
      } else { // granted to the agent again meanwhile: a new offer
        state.held.set(id, grantFrom(l.lock, l.thread, now(), id === state.openId));
      }
      hooks.renderMine();
      return;
    }
  }
  if (held.engaged) {
    lose(id, 'Your lock expired and the thread went back to its queue.');
    return;
  }
  dropOffer(id, 'was not opened in time and went back to its queue.');
}

// serverLocks reads the agent's locks for expired: one read at a time
// for every lock due, none while the page is paused, and none for 5 s
// after one failed. It answers null when it does not read.
let locksRead = null;
let locksRetryAt = 0;
function serverLocks() {
  if (state.paused || Date.now() < locksRetryAt) return Promise.resolve(null);
  if (!locksRead) {
    locksRead = all('/me/locks')
      .catch((e) => { locksRetryAt = Date.now() + 5000; throw e; })
      .finally(() => { locksRead = null; });
  }
  return locksRead;
}

// dropOffer forgets an offer this page never opened, with a notice: not
// an alert, as losing a thread one works on is.
function dropOffer(id, what) {
  const held = state.held.get(id);
  if (!held) return;
  state.held.delete(id);
  hooks.renderMine();
  hooks.info(`The thread of ${authorName(held.thread || {})} offered to you ${what}`);
}

// lose forgets a lock this page held and says so.
export function lose(id, reason) {
  const held = state.held.get(id);
  if (!held) return;
  state.held.delete(id);
  const who = held.thread ? ` (${authorName(held.thread)}, ${networkName(held.thread.network)})` : '';
  hooks.alert(`${LOST}${who} ${reason || ''}`.trim());
  hooks.renderMine();
  if (state.openId === id) {
    render();
    refresh();
  }
}

function authorName(t) {
  const a = t.author || {};
  return a.name || a.handle || a.id || 'customer';
}

// --- loading ---

let loadSeq = 0;

// openThread shows a thread; focus is 'heading', 'reply' or ''.
export async function openThread(id, focus = 'heading') {
  const changed = state.openId !== id;
  state.openId = id;
  if (changed) confirming = ''; // a question was about the thread left
  const held = state.held.get(id);
  if (held && !held.engaged) {
    held.engaged = true; // an offer opened is taken up: renewed from now on
    hooks.renderMine();
  }
  if (changed) {
    state.open = null;
    document.body.classList.add('thread-open');
    if (location.hash !== `#t/${id}`) history.replaceState(null, '', `#t/${id}`);
    const body = $('#thread-body');
    clear(body).append(h('p', { class: 'loading' }, 'Loading the thread…'));
    body.hidden = false;
    $('#thread-empty').hidden = true;
    hooks.markOpen();
  }
  const want = focusAfter = { id, focus, changed };
  await refresh();
  if (focusAfter !== want) return; // placed when the thread was drawn
  focusAfter = null;
  if (state.openId === id && state.open) placeFocus(want);
}

// focusAfter is where the focus goes when the thread being opened is drawn.
// It goes there at the first load that draws it, not after the loads
// queued behind that one: a step the person has taken on the thread by
// then (a button, the reply box) keeps the focus.
let focusAfter = null; // { id, focus, changed }

// placeFocus moves the focus as openThread was asked to, and says whether
// it could (a reply box to focus is drawn only for a lock held).
function placeFocus({ focus, changed }) {
  if (focus === 'reply') {
    const box = $('#reply-text');
    box?.focus();
    return Boolean(box);
  }
  if (focus === 'heading' && changed) $('#thread-h')?.focus();
  return true;
}

export function closeThread() {
  state.openId = '';
  state.open = null;
  document.title = 'Switchboard inbox';
  document.body.classList.remove('thread-open');
  history.replaceState(null, '', location.pathname);
  clear($('#thread-body')).hidden = true;
  $('#thread-empty').hidden = false;
  hooks.markOpen();
}

// refresh reloads the open thread and everything shown with it. One load
// at a time: a call while one is under way asks for one more after it,
// so a burst of events gets loads that finish, not loads that each
// supersede the last before it lands.
let loading = null;
let loadAgain = false;
export function refresh() {
  if (loading) {
    loadAgain = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        loadAgain = false;
        await load();
      } while (loadAgain && state.openId);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

async function load() {
  const id = state.openId;
  if (!id || state.paused) return; // read again when the agent carries on
  const seq = ++loadSeq;
  // The lists only grow: what is shown already is read again from its
  // last page on, unless a message shown before that changed (see
  // messageChanged; a change during this load marks the next one).
  const whole = rereadWhole === id;
  rereadWhole = '';
  const shown = state.open && state.open.thread.id === id && !whole ? state.open : {};
  let thread, messages, notes, events;
  try {
    [thread, messages, notes, events] = await Promise.all([
      api('GET', `/threads/${id}`),
      all(`/threads/${id}/messages`, 10, shown.messages),
      all(`/threads/${id}/notes`, 10, shown.notes),
      all(`/threads/${id}/events`, 10, shown.events),
    ]);
  } catch (e) {
    if (whole && !rereadWhole) rereadWhole = id;
    if (seq !== loadSeq || state.openId !== id) return;
    if (e.code === 'not_found') {
      state.held.delete(id);
      hooks.renderMine();
      closeThread();
      hooks.info('That thread is not in your teams: it was handed to another team or erased, or the link is wrong.');
      return;
    }
    // Opening a thread is something the agent did; reading it again is not.
    const again = Boolean(state.open && state.open.thread.id === id);
    if (e.status !== 401) hooks.alert(`The thread could not be loaded: ${describe(e)}`, again);
    return;
  }
  if (seq !== loadSeq || state.openId !== id) return;
  announceNew(state.open, messages);
  state.open = { thread, messages, notes, events };
  document.title = `${authorName(thread)} · Switchboard inbox`; // says which thread the tab holds
  checkHeld(thread);
  await loadSavedReplies(thread.team);
  if (seq !== loadSeq || state.openId !== id) return;
  render(false);
  if (focusAfter && focusAfter.id === id && placeFocus(focusAfter)) focusAfter = null;
}

// messageChanged notes that a message of the open thread changed (its
// delivery, or its customer deleted it): when it is not on the last page
// read, the next load reads the whole conversation again.
let rereadWhole = ''; // the thread whose next load reads its lists whole
export function messageChanged(messageId) {
  const o = state.open;
  if (!messageId) return;
  // Not shown yet (its first load is under way), or shown before the last
  // page read.
  if (!o || !o.messages.slice(o.messages.tail ? o.messages.tail.start : 0).some((m) => m.id === messageId)) rereadWhole = state.openId;
}

// announceNew says (politely, for screen readers too) that the customer
// wrote again in the thread open on screen, and (assertively) that a reply
// of it was not delivered.
function announceNew(before, messages) {
  if (!before || before.thread.id !== state.openId) return;
  const inbound = (ms) => ms.filter((m) => m.direction === 'inbound').length;
  const added = inbound(messages) - inbound(before.messages);
  if (added > 0) {
    const last = messages.filter((m) => m.direction === 'inbound').pop();
    const who = (last.author && (last.author.name || last.author.handle)) || 'The customer';
    hooks.info(added === 1 ? `New message from ${who}.` : `${added} new messages from ${who}.`);
  }
  const failedBefore = new Set(before.messages.filter((m) => m.delivery && m.delivery.status === 'failed').map((m) => m.id));
  const failed = messages.find((m) => m.delivery && m.delivery.status === 'failed' && !failedBefore.has(m.id));
  if (failed) {
    hooks.alert(`A reply in this thread was not delivered${failed.delivery.error ? `: ${failed.delivery.error}` : ''}. Send it again or answer another way.`);
  }
}

// checkHeld reconciles a held lock with the thread as the server shows it.
export function checkHeld(thread) {
  const held = state.held.get(thread.id);
  if (!held) return;
  const l = thread.lock;
  // An offer never opened ends with a notice; a thread taken up, an alert.
  const end = held.engaged ? lose : (id, why) => dropOffer(id, `is no longer yours: ${why}`);
  if (!l) {
    end(thread.id, thread.status === 'closed' ? 'It was closed.' : 'The lock ended.');
  } else if (l.agent_id !== state.me.id) {
    end(thread.id, `${nameOf(l.agent_id)} holds it now.`);
  } else if (Number(l.fence) !== held.fence) {
    end(thread.id, 'It was claimed again in another window.');
  } else {
    held.thread = thread;
    held.expiresAt = Date.parse(l.expires_at);
  }
}

async function loadSavedReplies(team) {
  if (!isPerson() || state.savedReplies.has(team)) return;
  try {
    state.savedReplies.set(team, await all(`/saved-replies?team=${encodeURIComponent(team)}`));
  } catch {
    state.savedReplies.set(team, []); // saved replies are a convenience
  }
}

// --- rendering ---

// render redraws the thread view, keeping what the agent typed, the focus
// and the scroll position.
let shown = '';

export function render(force = true) {
  const body = $('#thread-body');
  if (!state.open) return;
  // Redraw only when something shown changed (countdowns tick by
  // themselves), so buttons are not replaced under the pointer.
  const sig = JSON.stringify([state.open, holding(state.open.thread.id), (state.savedReplies.get(state.open.thread.team) || []).length,
    [...state.people], state.agents.map((a) => [a.id, a.status, a.teams, a.networks])]);
  if (!force && sig === shown && body.firstChild && !body.querySelector('.loading')) return;
  shown = sig;
  const keep = {};
  for (const el of body.querySelectorAll('textarea[id], input[id], select[id]')) {
    keep[el.id] = el.type === 'checkbox' ? el.checked : el.value;
  }
  const active = document.activeElement && body.contains(document.activeElement) ? document.activeElement : null;
  const focusId = active && active.id;
  const sel = active && 'selectionStart' in active ? [active.selectionStart, active.selectionEnd] : null;
  const pane = $('#thread');
  const scroll = pane.scrollTop;
  const convEl = $('#conversation');
  const atBottom = convEl ? convEl.scrollHeight - convEl.scrollTop - convEl.clientHeight < 40 : true;
  const convScroll = convEl ? convEl.scrollTop : 0;

  const parts = view(state.open);
  const form = body.querySelector('#reply-form');
  const fresh = parts[2].querySelector('#reply-form');
  if (form && fresh && form.dataset.key === fresh.dataset.key) {
    // The reply box stays the element the agent is typing in (its undo
    // history, an input method's composition); the rest is redrawn
    // around it.
    body.querySelector('.thread-head').replaceWith(parts[0]);
    body.querySelector('#lockbar').replaceWith(parts[1]);
    body.querySelector('.conv-section').replaceWith(parts[2].querySelector('.conv-section'));
    body.querySelector('.thread-side').replaceWith(parts[2].querySelector('.thread-side'));
  } else {
    clear(body).append(...parts);
  }

  for (const [k, v] of Object.entries(keep)) {
    const el = document.getElementById(k);
    if (!el || k === 'saved-reply') continue;
    if (el.type === 'checkbox') el.checked = v;
    else if (k !== 'reply-text') el.value = v;
  }
  pane.scrollTop = scroll;
  const conv = $('#conversation');
  if (conv && atBottom) conv.scrollTop = conv.scrollHeight;
  else if (conv) conv.scrollTop = convScroll; // reading an older message
  if (active && document.body.contains(active)) {
    // Still there (the reply box): its focus and selection are its own.
  } else if (focusId && document.getElementById(focusId)) {
    const el = document.getElementById(focusId);
    el.focus({ preventScroll: true });
    if (sel && 'setSelectionRange' in el) {
      try { el.setSelectionRange(sel[0], sel[1]); } catch { /* not a text field */ }
    }
  } else if (active && !document.body.contains(active)) {
    $('#thread-h')?.focus({ preventScroll: true });
  }
  tick(body);
}

function view({ thread, messages, notes, events }) {
  const mine = holding(thread.id);
  const a = thread.author || {};
  const team = state.teams.get(thread.team);
  const canTag = mine || canSupervise();
  const removeTag = canTag
    ? (t) => h('button', { type: 'button', class: 'tag-x', id: `tag-x-${t}`, 'aria-label': `Remove tag ${t}`, onclick: () => tags([], [t]) }, '×')
    : null;
  return [
    h('div', { class: 'thread-head' },
      h('button', { type: 'button', class: 'back link', onclick: () => { closeThread(); hooks.focusQueue(); } }, '← Back to queues'),
      h('h2', { id: 'thread-h', tabindex: '-1' }, h('bdi', {}, authorName(thread)),
        a.handle && a.handle !== a.name ? h('span', { class: 'handle' }, ` ${a.handle}`) : null,
        a.verified ? h('span', { class: 'badge verified', title: 'Verified account' }, '✓ verified') : null),
      h('p', { class: 'meta' },
        networkBadge(thread.network), ' ', priorityBadge(thread.priority), ' ',
        h('span', { class: `badge st-${thread.status}` }, thread.status), ' ',
        h('span', {}, team ? team.name : thread.team), thread.kind ? ` · ${thread.kind}` : '',
        a.followers ? ` · ${Number(a.followers).toLocaleString()} followers` : '',
        ' ', slaBadge(thread)),
      tagList(thread.tags, removeTag)),
    lockBar(thread, mine),
    h('div', { class: 'thread-grid' },
      h('div', { class: 'thread-main' },
        h('section', { class: 'conv-section', 'aria-labelledby': 'conv-h' },
          h('h3', { id: 'conv-h' }, 'Conversation'),
          h('ol', { id: 'conversation', class: 'conv', 'aria-label': 'Messages, oldest first' },
            messages.length ? messages.map(messageView) : h('li', { class: 'none' }, 'No messages.'),
            messages.more ? h('li', { class: 'none', role: 'note' }, `This conversation is longer than the page shows: its first ${messages.length.toLocaleString()} messages are above, the newest are not.`) : null)),
        mine ? composer(thread) : null),
      h('div', { class: 'thread-side' },
        actions(thread, mine),
        notesView(notes),
        auditView(events))),
  ];
}

function lockBar(thread, mine) {
  const l = thread.lock;
  const held = state.held.get(thread.id);
  if (mine) {
    return h('div', { id: 'lockbar', class: 'lockbar held' },
      h('p', {}, h('strong', {}, 'You are replying.'), ' Lock ',
        h('span', { class: 'until', dataset: { until: new Date(held.expiresAt).toISOString() } }, countdown(held.expiresAt - now())),
        ' left · renewed automatically while you are active.'),
      h('button', { type: 'button', id: 'keep-lock', onclick: () => keepLock(thread.id) }, 'Keep the lock'));
  }
  if (l && l.agent_id === (state.me && state.me.id)) {
    // Our lock, but not this page's token (e.g. another window): a claim
    // by the same agent returns the lock it holds, token included.
    return h('div', { id: 'lockbar', class: 'lockbar elsewhere' },
      h('p', {}, h('strong', {}, 'You hold this thread in another window.'), ' Lock until ', clock(l.expires_at), '.'),
      h('button', { type: 'button', id: 'claim-this', onclick: () => claim(thread.id) }, 'Work on it here ', h('kbd', {}, 'C')));
  }
  if (l) {
    return h('div', { id: 'lockbar', class: 'lockbar locked' },
      h('p', {}, h('strong', { class: 'holder' }, `${nameOf(l.agent_id)} is replying`),
        ` — locked until ${clock(l.expires_at)} (`,
        h('span', { class: 'until', dataset: { until: l.expires_at } }, countdown(Date.parse(l.expires_at) - now())),
        ' left). You cannot answer this thread now.'),
      canSupervise() ? guarded({ action: 'unlock', thread, label: 'Break the lock', question: `${nameOf(l.agent_id)} may be typing a reply. Break the lock?`, run: unlock }) : null);
  }
  if (thread.status === 'closed') {
    return h('div', { id: 'lockbar', class: 'lockbar free' }, h('p', {}, 'This thread is closed. A new message from the customer reopens it.'));
  }
  return h('div', { id: 'lockbar', class: 'lockbar free' },
    h('p', {}, thread.status === 'pending' ? 'Answered; waiting for the customer. Nobody holds it.' : 'Nobody is replying yet.'),
    isPerson() ? h('button', { type: 'button', id: 'claim-this', class: 'primary', onclick: () => claim(thread.id) }, 'Claim ', h('kbd', {}, 'C')) : null);
}

function messageView(m) {
  const inbound = m.direction === 'inbound';
  const who = inbound ? ((m.author && (m.author.name || m.author.handle)) || 'Customer') : nameOf(m.agent_id);
  const d = m.delivery;
  return h('li', { class: `msg ${inbound ? 'in' : 'out'}` },
    h('p', { class: 'msg-meta' },
      h('bdi', { class: 'who' }, who), ' · ', timeEl(m.sent_at || m.received_at),
      m.edited_at ? [' · ', h('span', { class: 'edited', title: `Edited ${clock(m.edited_at)}` }, 'edited')] : null,
      !inbound && d ? [' · ', h('span', { class: `delivery d-${d.status}` },
        d.status === 'sent' ? 'Delivered' : d.status === 'failed' ? `Not delivered${d.error ? `: ${d.error}` : ''}` : 'Awaiting delivery')] : null),
    m.text ? h('p', { class: 'text', dir: 'auto' }, m.text) : null,
    m.attachments && m.attachments.length
      ? h('ul', { class: 'attachments' }, m.attachments.map((at) => {
        const url = safeURL(at.url);
        return h('li', {}, url ? h('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, at.type || 'attachment') : (at.type || 'attachment'));
      }))
      : null);
}

function composer(thread) {
  const d = draft(thread.id);
  const saved = state.savedReplies.get(thread.team) || [];
  // The box outlives a sent reply's draft (a render keeps it): what is
  // typed goes to the thread's draft of the moment, not the one it began with.
  const ta = h('textarea', { id: 'reply-text', dir: 'auto', name: 'text', rows: '4', maxlength: '20000', required: true,
    'aria-describedby': 'reply-hint', oninput: (e) => { draft(thread.id).text = e.target.value; saveDrafts(); } });
  ta.value = d.text;
  // What the box shows besides the draft: a render keeps the box as it is
  // while this is the same.
  const key = JSON.stringify([thread.id, authorName(thread), saved.map((r) => [r.id, r.title])]);
  return h('form', { id: 'reply-form', class: 'composer', 'aria-labelledby': 'reply-h', onsubmit: sendReply, dataset: { key } },
    h('h3', { id: 'reply-h' }, `Reply to ${authorName(thread)}`),
    saved.length
      ? h('p', { class: 'row' }, h('label', { for: 'saved-reply' }, 'Saved reply'),
        h('select', { id: 'saved-reply', onchange: insertSaved },
          h('option', { value: '' }, 'Insert a saved reply…'),
          saved.map((r) => h('option', { value: r.id }, r.title || r.id))))
      : null,
    h('label', { for: 'reply-text', class: 'visually-hidden' }, 'Your reply'),
    ta,
    h('p', { class: 'row' },
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'reply-close', checked: d.close || false, onchange: (e) => { draft(thread.id).close = e.target.checked; saveDrafts(); } }), ' Close after sending'),
      h('span', { id: 'reply-hint', class: 'hint' }, 'Ctrl+Enter sends'),
      h('button', { type: 'submit', id: 'reply-send', class: 'primary' }, 'Send')));
}

function draft(id) {
  let d = state.drafts.get(id);
  if (!d) {
    d = { text: '', key: '', close: false };
    state.drafts.set(id, d);
  }
  return d;
}

// fill replaces the saved reply's placeholders.
export function fill(text, thread) {
  const a = thread.author || {};
  const vals = {
    'author.name': a.name || a.handle || '',
    'author.handle': a.handle || '',
    'agent.name': (state.me && state.me.name) || '',
  };
  return text.replace(/\{\{\s*(author\.name|author\.handle|agent\.name)\s*\}\}/g, (_, k) => vals[k]);
}

function insertSaved(e) {
  const id = e.target.value;
  e.target.value = '';
  if (!id || !state.open) return;
  const r = (state.savedReplies.get(state.open.thread.team) || []).find((x) => x.id === id);
  if (!r) return;
  const ta = $('#reply-text');
  const start = ta.selectionStart ?? ta.value.length;
  const before = ta.value.slice(0, start);
  // A space from what is typed already, unless it ends in one.
  const text = (before && !/\s$/.test(before) ? ' ' : '') + fill(r.text, state.open.thread);
  ta.value = before + text + ta.value.slice(ta.selectionEnd ?? start);
  draft(state.openId).text = ta.value;
  saveDrafts();
  ta.focus();
  ta.setSelectionRange(start + text.length, start + text.length);
}

function actions(thread, mine) {
  const sup = canSupervise();
  if (!mine && !sup) return null;
  // Escalations go to the first care team by id (as the server sends
  // them): there, escalating puts the thread back in its queue at high
  // priority, and the button says so.
  const firstCare = [...state.teams.values()].filter((t) => t.function === 'care').map((t) => t.id).sort()[0];
  const ends = endingStep(thread, mine);
  return h('section', { class: 'actions', 'aria-labelledby': 'actions-h' },
    h('h3', { id: 'actions-h' }, 'Actions'),
    h('p', { class: 'buttons' },
      mine ? ends('release', ['Release ', h('kbd', {}, 'U')], 'Release the thread', release) : null,
      thread.status === 'closed' ? null : ends('close', 'Close', 'Close it', closeIt)),
    thread.status !== 'closed' ? h('div', { class: 'handover' },
      h('label', { for: 'handover-note' }, 'Note for the next team (optional)'),
      h('input', { id: 'handover-note', type: 'text', maxlength: '20000' }),
      h('p', { class: 'buttons' },
        ends('escalate', thread.team === firstCare ? 'Escalate: back to the queue at high priority' : 'Escalate to care',
          'Escalate it', () => transfer('escalation')),
        ends('lead', 'Hand to sales as a lead', 'Hand it to sales', () => transfer('lead')))) : null,
    sup && thread.status !== 'closed' ? moveView(thread, ends) : null,
    h('form', { id: 'tag-form', class: 'tag-form', onsubmit: (e) => { e.preventDefault(); const v = $('#tag-input').value.trim(); if (v) tags(v.split(/[\s,]+/).filter(Boolean), []); } },
      h('label', { for: 'tag-input' }, 'Add a tag'),
      h('span', { class: 'row' }, h('input', { id: 'tag-input', type: 'text', maxlength: '64', autocomplete: 'off' }),
        h('button', { type: 'submit', id: 'act-tag' }, 'Add'))));
}

// endingStep makes the buttons of steps that end the thread's lock. Each
// asks first when it would take something away: from this agent, the reply
// typed and not sent (the draft stays, for a claim again); from another
// agent holding the thread, the thread, while they may be typing.
function endingStep(thread, mine) {
  const holder = !mine && thread.lock ? nameOf(thread.lock.agent_id) : '';
  return (action, label, what, run, ready) => guarded({ action, thread, label, run, ready,
    ask: () => (mine ? unsent(thread.id) : holder !== ''),
    question: mine ? `Your reply is not sent. ${what} anyway?` : `${holder} holds this thread and may be typing a reply. ${what} anyway?` });
}

// unsent reports whether the agent has typed a reply to the thread and not
// sent it.
export function unsent(id) {
  return ((state.drafts.get(id) || {}).text || '').trim() !== '';
}

// moveView is a supervisor's way to move a thread: to another team's queue
// (a transfer), or offered to an agent who may work it (assign), breaking
// any lock either way.
function moveView(thread, ends) {
  const teams = [...state.teams.values()].filter((t) => t.id !== thread.team).sort((a, b) => a.name.localeCompare(b.name));
  // As the server allows: members of the team, and supervisors.
  const agents = state.agents.filter((a) => ((a.teams || []).includes(thread.team) || a.role === 'supervisor') &&
    (!(a.networks || []).length || a.networks.includes(thread.network)) && a.id !== (thread.lock && thread.lock.agent_id));
  return h('div', { class: 'move' },
    h('p', { class: 'row' },
      h('label', { for: 'move-team' }, 'Move to'),
      h('select', { id: 'move-team' }, h('option', { value: '' }, 'a team…'), teams.map((t) => h('option', { value: t.id }, t.name))),
      ends('move', 'Move', 'Move it', moveToTeam, () => picked('#move-team', CHOOSE_TEAM) !== '')),
    h('p', { class: 'row' },
      h('label', { for: 'assign-agent' }, 'Offer to'),
      h('select', { id: 'assign-agent' }, h('option', { value: '' }, 'an agent…'),
        agents.map((a) => h('option', { value: a.id }, `${a.name || a.id} (${a.status}${a.on_shift === false ? ', off shift' : ''})`))),
      ends('assign', 'Assign', 'Offer it', assignTo, () => picked('#assign-agent', CHOOSE_AGENT) !== '')));
}

const CHOOSE_TEAM = 'Choose the team to move the thread to.';
const CHOOSE_AGENT = 'Choose the agent to offer the thread to.';

// picked is the value chosen in a list, or '' after an alert saying what
// to choose.
function picked(sel, missing) {
  const v = $(sel)?.value || '';
  if (!v) hooks.alert(missing);
  return v;
}

// guarded is a button for a step that may take something from someone
// (see endingStep; a supervisor's "Break the lock" always asks). When ask()
// says so at the click, the button asks in place and only "Yes" acts. The
// focus goes to Cancel (a held Enter would otherwise press Yes too), Escape
// cancels, and the question is about that lock only: another holder's, or
// another thread, asks again. ready() checks what the step needs first
// (and says what is missing).
let confirming = ''; // action:thread:fence being asked about
function guarded({ action, thread, label, question, run, ask = () => true, ready = () => true }) {
  const key = `${action}:${thread.id}:${thread.lock ? thread.lock.fence : ''}`;
  if (confirming !== key) {
    return h('button', { type: 'button', id: `act-${action}`, onclick: () => {
      if (!ready()) return;
      if (!ask()) {
        run();
        return;
      }
      confirming = key;
      render();
      $(`#act-${action}-no`)?.focus();
    } }, label);
  }
  const cancel = () => {
    confirming = '';
    render();
    $(`#act-${action}`)?.focus();
  };
  return h('span', { class: 'confirm', role: 'group', 'aria-labelledby': `act-${action}-q`,
    onkeydown: (e) => { if (e.key === 'Escape') cancel(); } },
  h('span', { id: `act-${action}-q` }, question), ' ',
  // Answered: the question goes at once, whether the step then works or
  // fails (its alert says which).
  h('button', { type: 'button', id: `act-${action}-yes`, onclick: () => { confirming = ''; render(); run(); } }, 'Yes'), ' ',
  h('button', { type: 'button', id: `act-${action}-no`, onclick: cancel }, 'Cancel'));
}

// reset forgets what belonged to the session that ended.
export function reset() {
  confirming = '';
  focusAfter = null;
  locksRead = null;
  locksRetryAt = 0;
}

function notesView(notes) {
  return h('section', { class: 'notes', 'aria-labelledby': 'notes-h' },
    h('h3', { id: 'notes-h' }, `Internal notes (${notes.length})`),
    notes.length ? h('ol', { class: 'note-list' }, notes.map((n) => h('li', {},
      h('p', { class: 'msg-meta' }, h('bdi', { class: 'who' }, nameOf(n.agent_id || n.actor)), ' · ', timeEl(n.created_at)),
      h('p', { class: 'text', dir: 'auto' }, n.text)))) : h('p', { class: 'none' }, 'No notes yet.'),
    h('form', { id: 'note-form', onsubmit: addNote },
      h('label', { for: 'note-text' }, 'Add a note (never sent to the customer)'),
      h('textarea', { id: 'note-text', dir: 'auto', rows: '2', maxlength: '20000', required: true }),
      h('button', { type: 'submit', id: 'note-add' }, 'Add note')));
}

let auditOpen = false;

function auditView(events) {
  return h('details', { class: 'audit', open: auditOpen, ontoggle: (e) => { auditOpen = e.target.open; } },
    h('summary', { id: 'audit-summary' }, `Audit trail (${events.length})`),
    h('ol', { class: 'audit-list' }, events.map((e) => h('li', {},
      timeEl(e.at, clock(e.at)), ' ', eventText(e)))));
}

function teamName(id) {
  const t = state.teams.get(id);
  return t ? t.name : id;
}

export function eventText(e) {
  const d = e.data || {};
  const by = nameOf(e.actor);
  switch (e.type) {
    case 'thread.created': return 'Thread created';
    case 'message.received': return `Message received (${d.kind || 'message'})`;
    case 'thread.routed': return `Routed to ${teamName(d.team)}${d.rules && d.rules.length ? ` by rule ${d.rules.join(', ')}` : ''}`;
    case 'thread.claimed': return `Claimed by ${nameOf(d.agent_id || e.actor)}`;
    case 'thread.offered': return `Offered to ${nameOf(d.to_agent)}`;
    case 'thread.replied': return `Reply sent by ${by}`;
    case 'thread.released': return `Released by ${by}${d.status ? ` (now ${d.status})` : ''}`;
    case 'thread.transferred': return `Handed from ${teamName(d.from_team)} to ${d.to_agent ? nameOf(d.to_agent) : teamName(d.to_team)}${d.reason ? ` (${d.reason})` : ''} by ${by}`;
    case 'thread.closed': return `Closed${d.reason ? ` (${d.reason.replace('_', ' ')})` : ''} by ${by}`;
    case 'thread.tagged': return `Tags ${[...(d.added || []).map((t) => `+${t}`), ...(d.removed || []).map((t) => `−${t}`)].join(' ')} by ${by}`;
    case 'thread.reopened': return `Reopened by a new message (was ${d.from})`;
    case 'thread.assigned': return `Assigned to ${nameOf(d.agent_id || d.to_agent)} by ${by}`;
    case 'thread.unlocked': return `Lock of ${nameOf(d.agent_id)} broken by ${by}`;
    case 'thread.priority_changed': return `Priority ${d.from} → ${d.to}`;
    case 'lock.expired': return `Lock of ${nameOf(d.agent_id)} expired`;
    case 'sla.breached': return 'First-response SLA breached';
    case 'note.added': return `Note added by ${by}`;
    case 'message.delivery': return d.status === 'failed' ? `Reply not delivered${d.error ? `: ${d.error}` : ''}`
      : d.status === 'sent' ? 'Reply delivered' : `Reply ${d.status}`;
    case 'message.deleted': return 'A message deleted by the customer on the network (its text is gone here too)';
    case 'message.edited': return 'A message edited by the customer on the network (its new text is shown)';
    default: return `${e.type} by ${by}`;
  }
}

// --- actions ---

// busy runs one action at a time per thread, so a double click does not
// send twice.
const inflight = new Set();
async function once(key, fn) {
  if (inflight.has(key)) return;
  inflight.add(key);
  try {
    await fn();
  } finally {
    inflight.delete(key);
  }
}

export function claim(id) {
  return once(`claim:${id}`, async () => {
    try {
      const r = await api('POST', `/threads/${id}/claim`, {});
      state.held.set(id, grantFrom(r.lock, r.thread, now(), true));
      hooks.renderMine();
      hooks.refreshQueues();
      hooks.info(`You claimed the thread of ${authorName(r.thread)}.`);
      await openThread(id, 'reply');
    } catch (e) {
      if (e.status === 401) return;
      hooks.alert(`Could not claim: ${describe(e)}`);
      hooks.refreshQueues();
      await openThread(id, 'heading');
    }
  });
}

export function claimNext(team) {
  return once('claim-next', async () => {
    try {
      const r = await api('POST', '/queue/claim', team ? { team } : {});
      if (!r) {
        hooks.info(`Nothing to claim${team ? ` in ${teamName(team)}` : ''}.`);
        return;
      }
      state.held.set(r.thread.id, grantFrom(r.lock, r.thread, now(), true));
      hooks.renderMine();
      hooks.refreshQueues();
      hooks.info(`You claimed the thread of ${authorName(r.thread)}.`);
      await openThread(r.thread.id, 'reply');
    } catch (e) {
      if (e.status !== 401) hooks.alert(`Could not claim the next thread: ${describe(e)}`);
    }
  });
}

// step runs a lock step with the held token (or, for a supervisor, none).
async function step(path, body, done) {
  const id = state.openId;
  const held = state.held.get(id);
  if (!held && !canSupervise()) {
    hooks.alert(LOST);
    render();
    return;
  }
  let handedOff = false;
  await once(`step:${id}`, async () => {
    try {
      const r = await api('POST', `/threads/${id}/${path}`, { ...(held ? { token: held.token } : {}), ...body });
      if (r && r.lock && r.lock.token && held) {
        held.expiresAt = Date.parse(r.lock.expires_at);
        held.thread = r.thread;
      } else {
        state.held.delete(id);
      }
      if (r && r.thread && !canSupervise() && !(state.me.teams || []).includes(r.thread.team)) {
        // Handed to a team of others: the thread leaves this page (if it is
        // still the one open), the confirmation stays, and focus goes back
        // to the queue.
        hooks.info(done(r));
        if (state.openId === id) {
          closeThread();
          handedOff = true;
        }
        return;
      }
      hooks.info(done(r));
    } catch (e) {
      if (e.code === 'lock_lost') lose(id, '');
      else if (e.status !== 401) hooks.alert(`That did not work: ${describe(e)}`);
    }
  });
  hooks.renderMine();
  hooks.refreshQueues();
  if (handedOff) {
    if (!state.openId) hooks.focusQueue();
    return;
  }
  if (state.openId === id) await refresh();
}

function release() {
  if (!state.openId || !state.held.has(state.openId)) return;
  return step('release', {}, (r) => (r.thread.status === 'pending'
    ? 'Released. The thread waits for the customer’s answer.'
    : 'Released. The thread is back in its queue.'));
}

function closeIt() {
  return step('close', {}, () => 'Thread closed.');
}

function transfer(reason) {
  const note = ($('#handover-note')?.value || '').trim();
  return step('transfer', { reason, ...(note ? { note } : {}) }, (r) => (reason === 'escalation'
    ? `Escalated to ${teamName(r.thread.team)}.`
    : `Handed to ${teamName(r.thread.team)} as a lead.`));
}

function tags(add, remove) {
  return step('tags', { add, remove }, () => (add.length ? `Tagged ${add.join(', ')}.` : `Removed tag ${remove.join(', ')}.`))
    .then(() => { const el = $('#tag-input'); if (el && add.length) el.value = ''; });
}

function moveToTeam() {
  const team = picked('#move-team', CHOOSE_TEAM);
  if (!team) return null;
  const note = ($('#handover-note')?.value || '').trim();
  return step('transfer', { team, ...(note ? { note } : {}) }, (r) => `Moved to ${teamName(r.thread.team)}.`);
}

function assignTo() {
  const agent = picked('#assign-agent', CHOOSE_AGENT);
  if (!agent) return null;
  return supervise('assign', { agent_id: agent }, (id) => {
    // A lock of our own on it ended with our own step: no news (its
    // event may come first, see heldEvent).
    if (agent !== state.me.id) state.held.delete(id);
    hooks.renderMine();
    hooks.info(`Offered to ${nameOf(agent)}.`);
  }, 'Could not assign');
}

function unlock() {
  return supervise('unlock', {}, () => hooks.info('Lock broken. The thread is free again.'), 'Could not break the lock');
}

// supervise runs a supervisor's step on the open thread that takes no
// token (unlock, assign), then reads the queues and the thread again.
function supervise(path, body, done, failed) {
  const id = state.openId;
  return once(`step:${id}`, async () => {
    try {
      await api('POST', `/threads/${id}/${path}`, body);
      done(id);
    } catch (e) {
      if (e.status !== 401) hooks.alert(`${failed}: ${describe(e)}`);
    }
  }).then(() => {
    hooks.refreshQueues();
    return refresh();
  });
}

// uncertainFor is the thread the "may not have been sent" alert is about.
let uncertainFor = '';

async function sendReply(ev) {
  ev.preventDefault();
  const id = state.openId;
  const ta = $('#reply-text');
  if (!holding(id)) {
    if (state.held.has(id)) lose(id, 'Your reply was not sent.');
    else hooks.alert(`${LOST} Your reply was not sent.`);
    render();
    return;
  }
  const held = state.held.get(id);
  const text = ta.value;
  if (!text.trim()) {
    hooks.alert('Write a reply first.');
    ta.focus();
    return;
  }
  const d = draft(id);
  d.text = text;
  if (!d.key) d.key = uuid(); // one key per composed reply, kept for retries
  saveDrafts(); // the key too: a retry after a reload sends once
  const close = $('#reply-close').checked;
  const btn = $('#reply-send');
  await once(`reply:${id}`, async () => {
    btn.disabled = true;
    btn.textContent = 'Sending…';
    try {
      const r = await api('POST', `/threads/${id}/replies`, { token: held.token, text, close },
        { headers: { 'Idempotency-Key': d.key } });
      if (r.message) {
        state.sent.set(r.message.id, { to: authorName(held.thread || r.thread) });
        if (state.sent.size > 200) state.sent.delete(state.sent.keys().next().value); // the oldest
      }
      if (close) state.held.delete(id);
      else if (r.lock && r.lock.token) {
        held.expiresAt = Date.parse(r.lock.expires_at);
        held.thread = r.thread;
      } else if (r.thread) checkHeld(r.thread);
      if (r.message && typeof r.message.text === 'string' && r.message.text !== text) {
        // The server answered with the reply its key first sent: an earlier
        // send that seemed to fail had gone out, as first written. The
        // edit did not; it stays, under a new key, to send as another reply.
        d.key = '';
        saveDrafts();
        hooks.alert('Your earlier send had gone out after all, as first written; this edited text was not sent. It is kept: press Send to send it as another reply.');
      } else {
        state.drafts.delete(id);
        saveDrafts();
        const el = state.openId === id ? $('#reply-text') : null; // another thread's box may be open by now
        if (el) el.value = '';
        // An earlier try's "may not have been sent" is out of date now, if
        // it was about this thread.
        if (uncertainFor === id && $('#alert').textContent.startsWith('Your reply may not have been sent')) hooks.alert('');
        hooks.info(close ? 'Reply sent and thread closed.' : 'Reply sent.');
      }
    } catch (e) {
      if (e.code === 'lock_lost') {
        lose(id, 'Your reply was not sent; your text is kept in case you claim it again.');
      } else if (e.status !== 401) {
        hooks.alert(`Your reply may not have been sent: ${describe(e)} Your text is kept; press Send to try again (it will not go out twice).`);
        uncertainFor = id;
      }
    } finally {
      const b = $('#reply-send');
      if (b) {
        b.disabled = false;
        b.textContent = 'Send';
      }
      // Send disabled while sending dropped the focus to the page's top:
      // back to the reply box, or the heading if the box is gone.
      if (state.openId === id && (!document.activeElement || document.activeElement === document.body)) {
        ($('#reply-text') || $('#thread-h'))?.focus();
      }
    }
  });
  hooks.renderMine();
  hooks.refreshQueues();
  await refresh();
}

async function addNote(ev) {
  ev.preventDefault();
  const id = state.openId;
  const ta = $('#note-text');
  const text = ta.value;
  if (!text.trim()) return;
  await once(`note:${id}`, async () => {
    try {
      await api('POST', `/threads/${id}/notes`, { text });
      ta.value = '';
      hooks.info('Note added.');
    } catch (e) {
      if (e.status !== 401) hooks.alert(`The note was not added: ${describe(e)}`);
    }
  });
  await refresh();
}

// --- renewal ---

// ACTIVE_MS is how long after the agent's last key, click or focus the
// page still counts them active (window.switchboardActiveMs sets it, for
// tests).
const ACTIVE_MS = Number(globalThis.switchboardActiveMs) || 3 * 60 * 1000;

// WARN_MS is how long before a lock the page will not renew (the agent is
// idle) ends that the agent is told, with a way to keep it: reading with a
// screen reader sends the page no keys.
const WARN_MS = 30 * 1000;

// keepLock renews a held lock now: the agent's answer to the warning.
function keepLock(id) {
  state.lastActivity = Date.now();
  const held = state.held.get(id);
  if (held) {
    held.engaged = true;
    renew(id, held);
  }
}

// renewDue renews held locks past half their lease while the agent is
// active; it runs every second.
let staleLockAt = 0;

let idleWarning = ''; // the alert warning of locks about to end

export function renewDue() {
  const t = now();
  let warn = false;
  // Someone else's lock shown past its end: they renewed (no event says so)
  // or it expired; read the thread again, at most every few seconds.
  const other = $('#lockbar.locked .until');
  if (other && Date.parse(other.dataset.until) < t - 1000 && Date.now() - staleLockAt > 3000) {
    staleLockAt = Date.now();
    refresh();
  }
  for (const [id, held] of state.held) {
    const left = held.expiresAt - t;
    if (left <= 0) {
      expired(id);
      continue;
    }
    if (held.renewing || !held.engaged || state.paused) continue;
    if (Date.now() - state.lastActivity > ACTIVE_MS) {
      if (left <= WARN_MS && !held.warning) { // once per lease: a renewal clears it
        held.warning = true;
        warn = true;
      }
      continue;
    }
    if (left > held.lease / 2) continue;
    if (held.retryAt && Date.now() < held.retryAt) continue;
    renew(id, held);
  }
  if (warn) warnIdle();
}

// warnIdle says which of the locks the page does not renew (the agent
// seems away) end within WARN_MS, in one alert with a button that keeps
// them all; each thread's lock bar has its own.
function warnIdle() {
  const ending = [...state.held].filter(([, held]) => held.warning);
  if (!ending.length) return;
  const names = ending.map(([, held]) => authorName(held.thread || {})).join(', ');
  const left = Math.ceil(Math.min(...ending.map(([, held]) => held.expiresAt - now())) / 1000);
  const label = ending.length === 1 ? 'Keep the lock' : 'Keep them all';
  idleWarning = ending.length === 1
    ? `Your lock on the thread of ${names} ends in ${left} seconds, as you seem to be away. Choose “${label}” to keep it.`
    : `Your locks on the threads of ${names} end in ${left} seconds or less, as you seem to be away. Choose “${label}” to keep them.`;
  // Only the locks warned of, as they were: one replaced meanwhile (a new
  // offer) is not taken up by this answer.
  hooks.alert(idleWarning, false, { label, run: () => ending.forEach(([id, held]) => { if (state.held.get(id) === held) keepLock(id); }) });
}

// renew extends a held lock by its lease.
function renew(id, held) {
  if (held.renewing) return;
  held.renewing = true;
  api('POST', `/threads/${id}/renew`, { token: held.token })
    .then((r) => {
      const cur = state.held.get(id);
      if (cur !== held) return;
      held.expiresAt = Date.parse(r.lock.expires_at);
      held.lease = Math.max(held.expiresAt - now(), held.lease);
      held.thread = r.thread;
      // The warning that the lock was ending is out of date now (or names
      // one lock fewer).
      if (held.warning) {
        held.warning = false;
        if ($('#alert').textContent === idleWarning) {
          hooks.alert('');
          warnIdle();
        }
      }
      if (state.openId === id) {
        // The lock bar was drawn with the old lease: give it the new one.
        const until = $('#lockbar.held .until');
        if (until) until.dataset.until = new Date(held.expiresAt).toISOString();
        tick($('#thread-body'));
      }
      hooks.renderMine();
    })
    .catch((e) => {
      if (e.code === 'lock_lost') lose(id, '');
      else held.retryAt = Date.now() + 5000;
    })
    .finally(() => { held.renewing = false; });
}
