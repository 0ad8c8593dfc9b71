import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

/**
 * Runs `code` in a Jupyter kernel over its websocket (`<prefix>api/kernels/<id>/channels`) as JupyterLab does and
 * returns the text of its execute_result. `headers` carry the credentials: a browser's cookies or a token.
 */
export async function executeInKernel(origin: string, prefix: string, kernelId: string, code: string, headers: Record<string, string>): Promise<string> {
  const ws = new WebSocket(`${origin.replace(/^http/, 'ws')}${prefix}api/kernels/${kernelId}/channels`, { headers });
  const msgId = randomUUID();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { ws.close(); reject(new Error('no execute_result within 30 s')); }, 30_000);
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
    ws.on('open', () => {
      ws.send(JSON.stringify({
        header: { msg_id: msgId, username: 'labhub-test', session: randomUUID(), msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {}, metadata: {}, channel: 'shell',
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      }));
    });
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { msg_type: string; parent_header: { msg_id?: string }; content: { data?: Record<string, string> } };
      if (msg.msg_type === 'execute_result' && msg.parent_header.msg_id === msgId) {
        clearTimeout(timer);
        ws.close();
        resolve(msg.content.data?.['text/plain'] ?? '');
      }
    });
  });
}
