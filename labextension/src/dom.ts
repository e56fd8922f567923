// A tiny DOM builder: text always goes in as text nodes, never as HTML.
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

export function table(
  caption: string,
  headers: string[],
  rows: Child[][],
  className = ''
): HTMLTableElement {
  return h(
    'table',
    { class: `jp-lens-table ${className}`.trim() },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map(x => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...rows.map(r => h('tr', {}, ...r.map(c => h('td', {}, c)))))
  );
}

export function field(
  label: string,
  input: HTMLElement,
  id: string
): HTMLElement {
  input.id = id;
  return h('div', { class: 'jp-lens-field' }, h('label', { for: id }, label), input);
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}
