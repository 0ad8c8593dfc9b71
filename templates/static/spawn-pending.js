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

  // The reason a start failed is for admins (it may name system accounts, paths or the engine); others get plain words.
  const showDetail = root.hasAttribute('data-show-detail');
  const PLAIN_FAILURE = 'Something went wrong while starting the server. Try again; if it fails again, tell your lab\'s admin.';

  /** Marks the step the start stopped at as failed, in words as well as in colour; false when that is not known. */
  function markFailedStep() {
    if (!root.querySelector('#progress-steps .current') && root.dataset.failedAt !== undefined) {
      const at = Number(root.dataset.failedAt);
      bar.value = at;
      bar.textContent = at + '%';
      markSteps(at, false);
    }
    const step = root.querySelector('#progress-steps .current');
    if (!step) return false;
    step.classList.remove('current');
    step.classList.add('failed');
    const state = document.createElement('span');
    state.className = 'step-state';
    state.textContent = ' (failed)';
    step.appendChild(state);
    return true;
  }

  function showFailedStep() {
    // Nothing known about how far it came (a start from before a hub restart): show only the outcome.
    if (markFailedStep()) return;
    bar.hidden = true;
    document.getElementById('progress-steps').hidden = true;
  }

  function fail(reason) {
    source.close();
    root.classList.add('failed');
    message.textContent = 'The server did not start.';
    failed.textContent = showDetail ? reason : PLAIN_FAILURE;
    failed.hidden = false;
    retry.hidden = false;
    const cancel = document.getElementById('cancel');
    if (cancel) cancel.hidden = true;
    retry.querySelector('button').focus();
    if (root.querySelector('#progress-steps .current') || root.dataset.failedAt !== undefined) { showFailedStep(); return; }
    // The start failed before this page's event stream opened, and the stream then gives only the outcome (as
    // JupyterHub's does): the page, asked again, says how far the start came.
    fetch(window.location.href, { credentials: 'same-origin' })
      .then(function (res) { return res.text(); })
      .then(function (html) {
        const again = new DOMParser().parseFromString(html, 'text/html').getElementById('spawn');
        if (again && again.dataset.failedAt !== undefined) root.dataset.failedAt = again.dataset.failedAt;
      })
      .catch(function () { /* the outcome is shown already; only the step is unknown */ })
      .then(showFailedStep);
  }

  source.onmessage = function (e) {
    const event = JSON.parse(e.data);
    const item = document.createElement('li');
    item.textContent = (event.failed && !showDetail ? PLAIN_FAILURE : event.message) || '';
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
