// Bundles the extension (one CommonJS file, `vscode` left external) and, with --tests, the
// unit tests (one file each, run by node's test runner).
//   node esbuild.mjs               dist/extension.js with source maps
//   node esbuild.mjs --production  minified, no source maps (what the .vsix ships)
//   node esbuild.mjs --tests       out/test/*.test.js
// With MESH_BUNDLE_PROXY=PATH, --production also copies that mesh-proxy binary to bin/, where
// the extension looks first when mesh.proxyPath is empty (a platform-specific .vsix).
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const tests = process.argv.includes('--tests');

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' };

if (tests) {
  rmSync('out/test', { recursive: true, force: true });
  const entryPoints = readdirSync('test/unit')
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => `test/unit/${f}`);
  // The unit tests cover the modules that do not import `vscode`; bundling fails if one does.
  await esbuild.build({ ...common, entryPoints, outdir: 'out/test', sourcemap: 'inline' });
} else {
  await esbuild.build({
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
    minify: production,
    sourcemap: !production,
    sourcesContent: false,
  });
  const proxy = process.env.MESH_BUNDLE_PROXY;
  if (production && proxy) {
    mkdirSync('bin', { recursive: true });
    const target = process.platform === 'win32' ? 'bin/mesh-proxy.exe' : 'bin/mesh-proxy';
    copyFileSync(proxy, target);
    chmodSync(target, 0o755);
    console.log(`bundled ${proxy} as ${target}`);
  }
}
