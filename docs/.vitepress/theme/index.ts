/// <reference types="vitepress/client" />
import DefaultTheme from 'vitepress/theme';
import type { Theme } from 'vitepress';
import './style.css';

/** Errors Vue met while rendering pages at build time (read by the config's `buildEnd`, which fails the build). */
declare global {
  var __cdssRenderErrors: string[] | undefined;
}

export default {
  extends: DefaultTheme,
  enhanceApp({ app, router }) {
    // Vue logs an error thrown while rendering a page on the server and goes on with the page half rendered: the build
    // would pass with a broken page. Record it instead, so the build fails and names the page.
    if (import.meta.env.SSR) {
      app.config.errorHandler = (error, _instance, info) => {
        const message = error instanceof Error ? error.message : String(error);
        (globalThis.__cdssRenderErrors ??= []).push(`${router.route.path}: ${message} (${info})`);
      };
    }
  },
} satisfies Theme;
