import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { gzipSync, constants as zlib } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'

// The page is served by mesh-server from web/dist (embedded in the binary): every asset
// under /assets/ with a content hash in its name, no inline script, nothing from another
// origin (docs/decisions/009-browser-client.md).

/** Pyodide's runtime files, copied from the npm package as they are: the loader, the
 * interpreter (JavaScript glue and WebAssembly), the standard library and the lock file
 * the loader reads. Nothing else of the package (its packages come from a CDN; mesh loads
 * none). */
const PYODIDE_FILES = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json']

/** Files stored gzip-compressed only (mesh-server sends them as they are with
 * `Content-Encoding: gzip`, and unpacks them for the rare client that does not take gzip):
 * the WebAssembly shrinks from 9.6 to 3.5 MB, in the binary and on the wire, and the
 * server never compresses 10 MB per request. The standard library is a zip already. */
const PYODIDE_GZIPPED = new Set(['pyodide.asm.mjs', 'pyodide.asm.wasm', 'pyodide-lock.json'])

const pyodideDir = dirname(createRequire(import.meta.url).resolve('pyodide/package.json'))
const pyodideVersion = (JSON.parse(readFileSync(join(pyodideDir, 'package.json'), 'utf8')) as { version: string }).version
/** The folder under assets/ with the version in its name: a URL there always means the
 * same bytes, so the browser may cache it for good, as the hashed assets. mesh-server
 * gives run workers their policy by name, and knows this folder by its `pyodide-` prefix. */
const PYODIDE_DIR = `pyodide-${pyodideVersion}`

/** Emits Pyodide's files into the build, under assets/pyodide-VERSION/. */
function pyodideAssets (): Plugin {
  return {
    name: 'mesh-pyodide-assets',
    apply: 'build',
    generateBundle () {
      for (const file of PYODIDE_FILES) {
        const bytes = readFileSync(join(pyodideDir, file))
        const gz = PYODIDE_GZIPPED.has(file)
        this.emitFile({
          type: 'asset',
          fileName: `assets/${PYODIDE_DIR}/${file}${gz ? '.gz' : ''}`,
          source: gz ? gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }) : bytes,
        })
      }
    },
  }
}

export default defineConfig({
  base: '/',
  define: {
    __MESH_PYODIDE_DIR__: JSON.stringify(PYODIDE_DIR),
  },
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
  plugins: [pyodideAssets()],
  worker: {
    // The run workers are module workers, each one file: the JavaScript sandbox's policy
    // lets it load no script at all, so nothing may be split into chunks it would import.
    // Their names (local-js-worker-HASH.js, local-py-worker-HASH.js) are how mesh-server
    // knows to send each its own Content-Security-Policy (server/src/web.rs).
    format: 'es',
    rollupOptions: { output: { entryFileNames: 'assets/[name]-[hash].js', inlineDynamicImports: true } },
  },
  resolve: {
    // One copy of each: two yjs copies break `instanceof` checks, two @codemirror/state
    // copies break extensions.
    dedupe: ['yjs', 'lib0', '@codemirror/state', '@codemirror/view', '@codemirror/language'],
  },
})
