// Follows the spawn progress event-stream and moves to the server when it is ready.
(function () {
  const root = document.getElementById('spawn');
  if (!root) return;
  const bar = document.getElementById('progress-bar');
  const message = document.getElementById('progress-message');
  const log = document.getElementById('progress-log');
  const failed = document.getElementById('progress-failed');
  const retry = document.getElementById('retry');
  const xsrf = document.body.dataset.xsrf || '';
  const url = root.dataset.progressUrl + '?_xsrf=' + encodeURIComponent(xsrf);
  const source = new EventSource(url);
  source.onmessage = function (e) {
    const event = JSON.parse(e.data);
    if (typeof event.progress === 'number') { bar.value = event.progress; bar.textContent = event.progress + '%'; }
    message.textContent = event.message || '';
    const item = document.createElement('li');
    item.textContent = event.message || '';
    log.appendChild(item);
    if (event.ready) { source.close(); window.location.href = event.url || root.dataset.serverUrl; }
    if (event.failed) {
      source.close();
      failed.textContent = event.message;
      failed.hidden = false;
      retry.hidden = false;
    }
  };
  source.onerror = function () { if (source.readyState === EventSource.CLOSED) message.textContent = 'Lost contact with the hub; reload the page.'; };
})();
