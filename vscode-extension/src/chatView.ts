/**
 * The chat panel's HTML, built without VS Code so tests can check it. Every piece of text
 * that comes from the room (names, messages) goes through `escapeHtml`; the page runs only
 * its own nonce-tagged script under a Content Security Policy that allows nothing else.
 */
import { randomBytes } from 'node:crypto';
import type { ChatEntry } from './protocol';

/** Escapes the five characters that matter in HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&#39;';
    }
  });
}

/** A fresh nonce for the page's script: 128 random bits, base64. */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Hours and minutes of a timestamp in the local time zone. */
export function formatTime(ts: number): string {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** One message as HTML; `mine` marks the local user's own. */
export function entryHtml(entry: ChatEntry, mine: boolean): string {
  const cls = mine ? 'entry mine' : 'entry';
  return (
    `<div class="${cls}" data-id="${escapeHtml(entry.id)}">` +
    `<div class="meta"><span class="author">${escapeHtml(entry.author)}</span>` +
    `<span class="time">${escapeHtml(formatTime(entry.ts))}</span></div>` +
    `<div class="text">${escapeHtml(entry.text)}</div></div>`
  );
}

/** What the page posts to the extension. */
export type FromWebview = { type: 'send'; text: string } | { type: 'ready' };

/** What the extension posts to the page. */
export type ToWebview =
  | { type: 'reset'; html: string }
  | { type: 'append'; html: string }
  | { type: 'error'; message: string }
  | { type: 'sent' };

/** Parses a message from the page; anything else is ignored. */
export function parseFromWebview(msg: unknown): FromWebview | undefined {
  if (typeof msg !== 'object' || msg === null) {
    return undefined;
  }
  const m = msg as Record<string, unknown>;
  if (m.type === 'ready') {
    return { type: 'ready' };
  }
  if (m.type === 'send' && typeof m.text === 'string' && m.text.trim() !== '') {
    return { type: 'send', text: m.text };
  }
  return undefined;
}

/** The whole page. `cspSource` is the webview's `cspSource`. */
export function chatPageHtml(opts: { cspSource: string; nonce: string; room: string }): string {
  const { cspSource, nonce } = opts;
  const csp = [
    "default-src 'none'",
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Mesh Chat</title>
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground);
         margin: 0; padding: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: 6px 10px; color: var(--vscode-descriptionForeground); border-bottom: 1px solid var(--vscode-panel-border); }
  #log { flex: 1; overflow-y: auto; padding: 8px 10px; }
  .entry { margin: 0 0 10px 0; }
  .meta { display: flex; gap: 8px; align-items: baseline; }
  .author { font-weight: 600; }
  .mine .author { color: var(--vscode-textLink-foreground); }
  .time { color: var(--vscode-descriptionForeground); font-size: 0.85em; }
  .text { white-space: pre-wrap; word-break: break-word; }
  #error { color: var(--vscode-errorForeground); padding: 0 10px; min-height: 1.2em; }
  form { display: flex; gap: 6px; padding: 8px 10px; border-top: 1px solid var(--vscode-panel-border); }
  textarea { flex: 1; resize: none; font: inherit; color: var(--vscode-input-foreground); background: var(--vscode-input-background);
             border: 1px solid var(--vscode-input-border, transparent); padding: 4px; }
  button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 12px; cursor: pointer; }
  button:hover { background: var(--vscode-button-hoverBackground); }
</style>
</head>
<body>
<header>Room ${escapeHtml(opts.room)}</header>
<div id="log" role="log" aria-live="polite"></div>
<div id="error" role="alert"></div>
<form id="form">
  <textarea id="input" rows="2" placeholder="Message (Enter sends, Shift+Enter for a new line)" aria-label="Message"></textarea>
  <button type="submit">Send</button>
</form>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const log = document.getElementById('log');
  const input = document.getElementById('input');
  const error = document.getElementById('error');
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  window.addEventListener('message', (event) => {
    const msg = event.data;
    // The extension escapes every text it puts in this HTML (see entryHtml).
    if (msg.type === 'reset') { log.innerHTML = msg.html; scrollDown(); }
    else if (msg.type === 'append') { log.insertAdjacentHTML('beforeend', msg.html); scrollDown(); }
    else if (msg.type === 'error') { error.textContent = msg.message; }
    else if (msg.type === 'sent') { error.textContent = ''; }
  });
  function send() {
    const text = input.value;
    if (text.trim() === '') { return; }
    vscode.postMessage({ type: 'send', text });
    input.value = '';
  }
  document.getElementById('form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
  });
  vscode.postMessage({ type: 'ready' });
  input.focus();
</script>
</body>
</html>`;
}
