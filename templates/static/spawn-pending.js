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

  source.onmessage = function (e) {
    const event = JSON.parse(e.data);
    if (typeof event.progress === 'number') {
      bar.value = event.progress;
      bar.textContent = event.progress + '%';
      markSteps(event.progress, Boolean(event.ready));
    }
    message.textContent = event.message || '';
    const item = document.createElement('li');
    item.textContent = event.message || '';
    log.appendChild(item);
    if (event.ready) { source.close(); window.location.href = event.url || root.dataset.serverUrl; }
    if (event.failed) {
      source.close();
      root.classList.add('failed');
      failed.textContent = event.message;
      failed.hidden = false;
      retry.hidden = false;
      retry.querySelector('button').focus();
    }
  };
  source.onerror = function () { if (source.readyState === EventSource.CLOSED) message.textContent = 'Lost contact with the hub; reload the page.'; };
})();
