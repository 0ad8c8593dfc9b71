// Follows the spawn progress event-stream: moves the bar and the steps, and goes to the server when it is ready.
(function () {
  const root = document.getElementById('spawn');
  if (!root) return;
  const bar = document.getElementById('progress-bar');
  const message = document.getElementById('progress-message');
  const log = document.getElementById('progress-log');
  const steps = Array.prototype.slice.call(document.querySelectorAll('#progress-steps li'));
  const failed = document.getElementById('progress-failed');
  const retry = document.getElementById('retry');
  const xsrf = document.body.dataset.xsrf || '';
  const source = new EventSource(root.dataset.progressUrl + '?_xsrf=' + encodeURIComponent(xsrf));

  function markSteps(progress, done) {
    steps.forEach(function (step, i) {
      const next = steps[i + 1];
      const reached = progress >= Number(step.dataset.at);
      const current = reached && (!next || progress < Number(next.dataset.at)) && !done;
      step.classList.toggle('done', reached && !current);
      step.classList.toggle('current', current);
      if (current) step.setAttribute('aria-current', 'step'); else step.removeAttribute('aria-current');
    });
  }

  function fail(reason) {
    source.close();
    root.classList.add('failed');
    // Opened after the start had already failed: there is no progress to show, only the outcome.
    if (!root.querySelector('#progress-steps .done, #progress-steps .current')) {
      bar.hidden = true;
      document.getElementById('progress-steps').hidden = true;
    }
    message.textContent = 'The server did not start.';
    failed.textContent = reason;
    failed.hidden = false;
    retry.hidden = false;
    retry.querySelector('button').focus();
  }

  source.onmessage = function (e) {
    const event = JSON.parse(e.data);
    const item = document.createElement('li');
    item.textContent = event.message || '';
    log.appendChild(item);
    // A failure ends the stream at 100%; the steps stay where the start stopped, that step marked as failed.
    if (event.failed) { fail(event.message); return; }
    if (typeof event.progress === 'number') {
      bar.value = event.progress;
      bar.textContent = event.progress + '%';
      markSteps(event.progress, Boolean(event.ready));
    }
    message.textContent = event.message || '';
    // The page's own URL is where the user was going (a path inside the server); the event's is the server's root.
    if (event.ready) { source.close(); window.location.href = root.dataset.serverUrl || event.url; }
  };
  source.onerror = function () { if (source.readyState === EventSource.CLOSED) message.textContent = 'Lost contact with the hub; reload the page.'; };
})();
