// The live event stream: GET /api/v1/events as Server-Sent Events, with the
// session cookie. While the connection is up, EventSource reconnects by
// itself and resumes with Last-Event-ID. When the browser gives up (the
// server answered an error, e.g. 401 or 429), we check the session and open
// a new stream that resumes from the last event id we saw.

export const EVENT_TYPES = [
  'message.received', 'thread.created', 'thread.routed', 'thread.claimed', 'thread.offered',
  'thread.replied', 'thread.released', 'thread.transferred', 'thread.closed', 'thread.tagged',
  'thread.reopened', 'thread.assigned', 'thread.unlocked', 'thread.priority_changed',
  'lock.expired', 'sla.breached', 'note.added', 'thread.erased', 'message.delivery', 'message.deleted',
  'message.edited',
];

// connect opens the stream. onEvent gets each event's JSON; onState gets
// "open" or "reconnecting", and with "open" whether the stream may have
// missed events: it was down, or it opened with no event to resume from
// (the first open), so what happened between the page's reads and the
// server taking the stream on is in neither; check runs before a manual
// reconnect and may throw to stop (e.g. the session is gone).
export function connect({ onEvent, onState, check }) {
  let es = null;
  let lastId = '';
  let timer = 0;
  let delay = 1000;
  let stopped = false;
  let paused = false;
  let wasDown = false;

  function open() {
    if (stopped || paused) return;
    if (es) es.close(); // one stream at a time
    const url = '/api/v1/events' + (lastId ? `?last_event_id=${encodeURIComponent(lastId)}` : '');
    es = new EventSource(url, { withCredentials: true });
    const resumed = Boolean(lastId);
    es.onopen = () => {
      delay = 1000;
      onState('open', wasDown, !resumed);
      wasDown = false;
    };
    es.onerror = () => {
      if (stopped) return;
      wasDown = true;
      onState('reconnecting');
      if (es.readyState === EventSource.CLOSED) retry();
    };
    const handle = (ev) => {
      if (ev.lastEventId) lastId = ev.lastEventId;
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      onEvent(data);
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, handle);
    es.onmessage = handle; // an event without a type of ours
  }

  function retry() {
    es.close();
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        await check();
      } catch {
        // check decides: a 401 ends the session; anything else retries.
        if (stopped) return;
      }
      open();
    }, delay);
    delay = Math.min(delay * 2, 30000);
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (es) es.close();
    },
    // pause closes the stream until resume, which opens it again from
    // the last event seen.
    pause() {
      paused = true; // also for a retry whose session check is under way
      clearTimeout(timer);
      if (es) es.close();
    },
    // resume reports whether the stream resumes from an event seen: one
    // that had none to resume from reads everything again once it is open
    // (onState's gap), so the caller need not.
    resume() {
      paused = false;
      clearTimeout(timer);
      open();
      return Boolean(lastId);
    },
  };
}
