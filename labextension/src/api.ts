// Every call goes to this user's own server (/lens/api/...), which forwards to the
// lens service with the server's hub token: the browser never holds a lens credential.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export class LensError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

export async function lensRequest<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'lens/api', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new LensError(
      data.message || data.reason || response.statusText,
      response.status
    );
  }
  return data as T;
}

export function service<T>(path: string, init: RequestInit = {}): Promise<T> {
  return lensRequest<T>(`service/${path}`, init);
}

export function postJSON<T>(path: string, body: unknown): Promise<T> {
  return lensRequest<T>(path, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  });
}
