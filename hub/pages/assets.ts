import { Router } from 'express';
import { TEMPLATES_DIR } from './render.js';

/**
 * The logo and favicon at the addresses Jupyter and browsers ask for: jupyterhub-singleuser's pages show
 * `<hub prefix>logo` in their header (JupyterHub's LogoHandler), and browsers fetch `/favicon.ico` on their own.
 */
export function brandAssets(): Router {
  const router = Router();
  const options = { root: `${TEMPLATES_DIR}static`, maxAge: '1h' };
  router.get('/hub/logo', (_req, res) => res.type('image/svg+xml').sendFile('logo.svg', options));
  router.get(['/favicon.ico', '/hub/favicon.ico'], (_req, res) => res.type('image/x-icon').sendFile('favicon.ico', options));
  return router;
}
