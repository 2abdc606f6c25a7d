/**
 * A small DOM builder. Text always goes in as `textContent`, never as HTML, so nothing a
 * server or another participant sends can become markup or script.
 */

type Child = Node | string | null | undefined | false
type Attrs = Record<string, string | boolean | number | undefined | EventListener>

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value)
    else if (key === 'class') el.className = String(value)
    else if (value === true) el.setAttribute(key, '')
    else el.setAttribute(key, String(value))
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c)
  return el
}

/** Replaces an element's children. */
export function fill (el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false))
}

/** A coloured dot (the colour set through the CSSOM, which the CSP allows). */
export function dot (color: string): HTMLElement {
  const d = h('span', { class: 'dot' })
  d.style.backgroundColor = color
  return d
}
