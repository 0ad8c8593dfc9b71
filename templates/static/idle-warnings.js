// Warns before a server is culled for inactivity (docs/idle-culling.md): each of the user's running servers has a
// hidden banner that shows a countdown once the server is within the warning time, and a button that reports
// activity for it. The hub is asked every 30 s, every 10 s while warning (activity from another tab or the server
// then hides the banner soon); between answers the countdown runs on this page's clock.
(function () {
  const POLL_MS = 30000;
  const WARNING_POLL_MS = 10000;
  const xsrf = document.body.dataset.xsrf || '';
  // The hub's clock minus this browser's: activity is reported in the hub's time, since the hub ignores a report
  // older than the activity it has (a browser clock running late would make the button do nothing).
  let hubOffset = 0;

  function twoDigits(n) { return (n < 10 ? '0' : '') + n; }

  function watch(banner) {
    const countdown = banner.querySelector('.idle-countdown');
    const message = banner.querySelector('.idle-message');
    const failed = banner.querySelector('.idle-failed');
    const announce = banner.querySelector('.idle-announce');
    const keep = banner.querySelector('.idle-keep');
    let deadline = null;
    let warnMs = 0;
    let gone = false;
    let poller = 0;

    function warning() { return deadline !== null && deadline - Date.now() <= warnMs; }

    function render() {
      if (gone) return;
      if (!warning()) {
        banner.hidden = true;
        return;
      }
      const left = Math.max(0, deadline - Date.now());
      const seconds = Math.ceil(left / 1000);
      countdown.textContent = Math.floor(seconds / 60) + ':' + twoDigits(seconds % 60);
      if (banner.hidden) {
        banner.hidden = false;
        // Said once when the banner appears: a live countdown would be read out every second.
        announce.textContent = banner.dataset.label + ' will be stopped for inactivity in about ' + Math.max(1, Math.ceil(seconds / 60)) + ' min.';
      }
    }

    function showGone() {
      gone = true;
      window.clearTimeout(poller);
      message.textContent = banner.dataset.label + ' has stopped.';
      keep.hidden = true;
      failed.hidden = true;
    }

    function poll() {
      window.clearTimeout(poller);
      return fetch(banner.dataset.idleUrl, { credentials: 'same-origin', headers: { 'X-XSRFToken': xsrf } })
        .then(function (res) {
          if (!res.ok) throw new Error('idle state: HTTP ' + res.status);
          const hubNow = Date.parse(res.headers.get('Date') || '');
          if (!isNaN(hubNow)) hubOffset = hubNow - Date.now();
          return res.json();
        })
        .then(function (state) {
          const shown = !banner.hidden;
          if (state.seconds_left === null) {
            deadline = null;
            if (shown) showGone();
          } else {
            deadline = Date.now() + state.seconds_left * 1000;
            warnMs = state.warn_before * 1000;
          }
          render();
        })
        .catch(function () { /* the last state stands until the next poll */ })
        .then(function () {
          if (!gone) poller = window.setTimeout(poll, warning() ? WARNING_POLL_MS : POLL_MS);
        });
    }

    keep.addEventListener('click', function () {
      keep.disabled = true;
      failed.hidden = true;
      const servers = {};
      servers[banner.dataset.server] = { last_activity: new Date(Date.now() + hubOffset).toISOString() };
      fetch(banner.dataset.activityUrl, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-XSRFToken': xsrf },
        body: JSON.stringify({ servers: servers }),
      })
        .then(function (res) {
          if (!res.ok) throw new Error('activity: HTTP ' + res.status);
          deadline = null;
          render();
          return poll();
        })
        .catch(function () { failed.hidden = false; })
        .then(function () { keep.disabled = false; });
    });

    poll();
    window.setInterval(render, 1000);
  }

  document.querySelectorAll('.idle-warning[data-idle-url]').forEach(watch);
})();
