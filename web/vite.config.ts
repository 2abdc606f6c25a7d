import { defineConfig } from 'vite'

// The page is served by mesh-server from web/dist (embedded in the binary): every asset
// under /assets/ with a content hash in its name, no inline script, nothing from another
// origin (docs/decisions/009-browser-client.md).
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    emptyOutDir: true,
    // Every browser the page supports has module preloading; the polyfill is dead weight.
    modulePreload: { polyfill: false },
    // No inlined data: URLs: each asset is a file the CSP's 'self' covers.
    assetsInlineLimit: 0,
  },
  resolve: {
    // One copy of each: two yjs copies break `instanceof` checks, two @codemirror/state
    // copies break extensions.
    dedupe: ['yjs', 'lib0', '@codemirror/state', '@codemirror/view', '@codemirror/language'],
  },
})
