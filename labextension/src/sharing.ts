import { Widget } from '@lumino/widgets';

import { lensRequest } from './api';
import { field, h, table } from './dom';

interface IShare {
  kind: 'user' | 'group';
  name: string;
  created_at: string | null;
}

interface IShares {
  owner: string;
  url: string;
  shares: IShare[];
}

/** Sharing: give a user or a group access to this server (JupyterHub sharing), see and revoke shares. */
export class SharingTab extends Widget {
  private kind = h('select', {},
    h('option', { value: 'user' }, 'user'), h('option', { value: 'group' }, 'group'));
  private name = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' });
  private message = h('p', { class: 'jp-lens-share-message', role: 'status', 'aria-live': 'polite' });
  private body = h('div', { class: 'jp-lens-shares', 'aria-live': 'polite' });

  constructor() {
    super();
    this.id = 'jp-lens-sharing';
    this.title.label = 'Sharing';
    this.addClass('jp-lens-tab');
    const share = h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept' }, 'Share');
    const form = h('form', { class: 'jp-lens-toolbar', 'aria-label': 'Share this server' },
      field('With a', this.kind, 'jp-lens-share-kind'), field('named', this.name, 'jp-lens-share-name'), share);
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.change('POST', this.kind.value, this.name.value.trim());
    });
    this.node.append(
      form,
      this.message,
      this.body,
      h('p', { class: 'jp-lens-note' },
        'Whoever you share with opens this server and works in it as you do: your files, your ' +
          'kernels, real-time editing with you. Its cost stays yours. Revoking ends their access ' +
          'within seconds, open tabs included.')
    );
  }

  async refresh(): Promise<void> {
    try {
      this.render(await lensRequest<IShares>('shares'));
    } catch (err) {
      this.body.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
  }

  private async change(method: 'POST' | 'DELETE', kind: string, name: string): Promise<void> {
    if (!name) {
      return;
    }
    try {
      const model = await lensRequest<IShares>('shares', {
        method,
        body: JSON.stringify({ [kind]: name }),
        headers: { 'Content-Type': 'application/json' }
      });
      this.message.classList.remove('jp-lens-error');
      this.message.textContent = method === 'POST'
        ? `Shared with ${kind} ${name}: they open ${location.origin}${model.url}`
        : `Revoked ${kind} ${name}.`;
      if (method === 'POST') {
        this.name.value = '';
      }
      this.render(model);
    } catch (err) {
      this.message.classList.add('jp-lens-error');
      this.message.textContent = (err as Error).message;
    }
  }

  private render(model: IShares): void {
    if (!model.shares.length) {
      this.body.replaceChildren(h('p', {}, `${model.url} is not shared.`));
      return;
    }
    const rows = model.shares.map(s => {
      const revoke = h('button', { type: 'button', class: 'jp-mod-styled jp-lens-revoke',
        'aria-label': `Revoke ${s.kind} ${s.name}` }, 'Revoke');
      revoke.addEventListener('click', () => void this.change('DELETE', s.kind, s.name));
      return [s.kind, s.name, (s.created_at ?? '').slice(0, 16).replace('T', ' '), revoke];
    });
    this.body.replaceChildren(table(`${model.url} is shared with`, ['kind', 'name', 'since', 'revoke'], rows, 'jp-lens-share-table'));
  }
}
