// Small DOM and formatting helpers. Text from the server (customers'
// messages, names, tags) only ever becomes text nodes, never HTML.

import { now } from './api.js';

// h builds an element: h('button', {class: 'x', onclick: fn}, 'Label').
// Attribute values false/null/undefined are left out; true sets a boolean
// attribute; "text" sets textContent.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const NETWORKS = {
  twitter: 'X', instagram: 'Instagram', facebook: 'Facebook', linkedin: 'LinkedIn',
  tiktok: 'TikTok', youtube: 'YouTube', whatsapp: 'WhatsApp', other: 'Other',
};

// networkBadge is the network's name as a coloured text label.
export function networkBadge(network) {
  const label = NETWORKS[network] || network || 'Other';
  return h('span', { class: `net net-${NETWORKS[network] ? network : 'other'}`, title: `Network: ${label}` }, label);
}

export function networkName(network) {
  return NETWORKS[network] || network || 'Other';
}

export function priorityBadge(priority) {
  const p = priority || 'normal';
  return h('span', { class: `prio prio-${p}`, title: `Priority: ${p}` }, p[0].toUpperCase() + p.slice(1));
}

export function tagList(tags, extra) {
  if (!tags || tags.length === 0) return null;
  return h('ul', { class: 'tags', 'aria-label': 'Tags' },
    tags.map((t) => h('li', { class: 'tag' }, t, extra ? extra(t) : null)));
}

// duration formats milliseconds as "45s", "12m", "3h 05m", "2d 4h".
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

// countdown formats milliseconds as "m:ss" (or "h:mm:ss").
export function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hrs = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hrs > 0 ? `${hrs}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date(now()).toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function timeEl(iso, text) {
  return h('time', { datetime: iso }, text ?? dateTime(iso));
}

// Live times: elements with data-since, data-due or data-until are rewritten
// by tick() every second, so countdowns move without re-rendering.
export function since(iso, prefix = 'waiting ') {
  return h('span', { class: 'wait', dataset: { since: iso, prefix } }, prefix + duration(now() - Date.parse(iso)));
}

export function slaBadge(thread) {
  // Closed unanswered, nothing is due any more.
  if (!thread.sla_due_at || thread.first_response_at || thread.status === 'closed') return null;
  return h('span', { class: 'sla', dataset: { due: thread.sla_due_at } }, slaText(Date.parse(thread.sla_due_at)));
}

function slaText(due) {
  const left = due - now();
  return left >= 0 ? `SLA ${countdown(left)}` : `SLA overdue ${duration(-left)}`;
}

export function tick(root = document) {
  const t = now();
  for (const el of root.querySelectorAll('[data-since]')) {
    el.textContent = el.dataset.prefix + duration(t - Date.parse(el.dataset.since));
  }
  for (const el of root.querySelectorAll('[data-due]')) {
    const due = Date.parse(el.dataset.due);
    el.textContent = slaText(due);
    el.classList.toggle('breach', due - t < 0);
    el.classList.toggle('soon', due - t >= 0 && due - t < 5 * 60 * 1000);
  }
  for (const el of root.querySelectorAll('[data-until]')) {
    el.textContent = countdown(Date.parse(el.dataset.until) - t);
  }
  for (const el of root.querySelectorAll('[data-waitbase]')) {
    const base = Number(el.dataset.waitbase);
    el.textContent = base > 0 ? duration(base * 1000 + (t - Number(el.dataset.at))) : '—';
  }
}

// uuid is a random RFC 4122 version 4 id (crypto.randomUUID needs a secure
// context; getRandomValues does not).
export function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// safeURL returns an http(s) URL or null: attachment links never run script.
export function safeURL(s) {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}
