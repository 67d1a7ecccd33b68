// Minifies the dashboard's wasm-bindgen glue (hamster-web-<hash>.js) in a release build, and gives index.html the
// new file's integrity hash. Trunk runs this after it has written the build to its staging directory (a
// `post_build` hook in Trunk.toml), so what it changes is what lands in dist/. Debug builds are left alone.
//
// Why: wasm-bindgen writes readable JavaScript, and trunk's own minifier barely shortens it (48 bytes gzipped);
// esbuild, already used to bundle the chart library, takes about a fifth off the glue gzipped. Only whitespace,
// local names and syntax change: the import names the wasm module links against are object keys and stay as
// they are.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

if (process.env.TRUNK_PROFILE !== 'release') process.exit(0);
const staging = process.env.TRUNK_STAGING_DIR;
if (!staging) {
    console.error('minify-glue: TRUNK_STAGING_DIR is not set (run by trunk as a post_build hook)');
    process.exit(1);
}
const esbuild = createRequire(import.meta.url)('esbuild-wasm');

const glue = readdirSync(staging).filter((f) => /^hamster-web-[0-9a-f]+\.js$/.test(f));
if (glue.length !== 1) {
    console.error(`minify-glue: expected one hamster-web-<hash>.js in ${staging}, found ${glue.length}`);
    process.exit(1);
}
const file = glue[0];
const path = join(staging, file);
const before = readFileSync(path);
const { code } = await esbuild.transform(before.toString('utf8'), { minify: true, format: 'esm', target: 'es2020' });
writeFileSync(path, code);

// The page preloads the glue with a subresource-integrity hash of what trunk wrote; a stale one would make the
// browser refuse the file.
const integrity = (bytes) => `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
const html = join(staging, 'index.html');
const page = readFileSync(html, 'utf8');
const old = integrity(before);
if (!page.includes(old)) {
    console.error(`minify-glue: index.html has no integrity ${old} for ${file}`);
    process.exit(1);
}
writeFileSync(html, page.split(old).join(integrity(Buffer.from(code))));
console.log(`minify-glue: ${file} ${before.length} -> ${Buffer.byteLength(code)} bytes`);
