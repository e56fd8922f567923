import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { postJSON } from './api';
import { field, h } from './dom';
import { usdMicro } from './format';

interface ICostRow {
  storage_class: string;
  total_monthly_micro: number;
}

/** Tags typed as "key=value, key=value". */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of text.split(',').map(x => x.trim()).filter(Boolean)) {
    const at = item.indexOf('=');
    if (at <= 0) {
      throw new Error(`A tag must look like key=value, not ${JSON.stringify(item)}`);
    }
    tags[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return tags;
}

/** "Archive…": name, tags and storage class, each class with its monthly cost (a dry run). */
export async function archiveDialog(paths: string[]): Promise<boolean> {
  let costs: ICostRow[] = [];
  try {
    const dry = await postJSON<{ costs?: ICostRow[] }>('archives', { paths, dry_run: true });
    costs = dry.costs ?? [];
  } catch (err) {
    await showDialog({ title: 'Archive', body: (err as Error).message, buttons: [Dialog.okButton()] });
    return false;
  }
  const base = paths[0].split('/').filter(Boolean).pop() ?? 'archive';
  const name = h('input', { type: 'text', value: base });
  const tags = h('input', { type: 'text', placeholder: 'project=alpha, year=2026' });
  const cls = h('select', {}, ...costs.map(c =>
    h('option', { value: c.storage_class }, `${c.storage_class} — ${usdMicro(c.total_monthly_micro)} a month`)));
  const body = new Widget();
  body.addClass('jp-lens-dialog');
  body.node.append(h('p', {}, `Archive ${paths.join(', ')}`),
    field('Name', name, 'jp-lens-archive-name'), field('Tags', tags, 'jp-lens-archive-tags'),
    field('Storage class (monthly cost)', cls, 'jp-lens-archive-class'));
  const result = await showDialog({
    title: 'Archive', body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Archive', ariaLabel: 'Archive' })]
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await postJSON('archives', { paths, name: name.value, tags: parseTags(tags.value), storage_class: cls.value });
    return true;
  } catch (err) {
    await showDialog({ title: 'Archive', body: (err as Error).message, buttons: [Dialog.okButton()] });
    return false;
  }
}

/** The command a script runs with, by its extension (words, never a shell line).
 * `root` is the server's root when absolute; otherwise the path stays relative to the
 * home, where jobs on the local backend start. */
export function commandFor(path: string, root = ''): string | null {
  const where = root.startsWith('/') ? `${root.replace(/\/+$/, '')}/${path}` : path;
  if (/\s/.test(where)) {
    return null; // the form splits a command into words
  }
  if (/\.py$/.test(path)) {
    return `python3 ${where}`;
  }
  if (/\.(sh|bash)$/.test(path)) {
    return `bash ${where}`;
  }
  if (/\.R$/i.test(path)) {
    return `Rscript ${where}`;
  }
  return null;
}
