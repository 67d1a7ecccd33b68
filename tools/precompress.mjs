// Writes a gzip and a brotli copy next to each of the release build's immutable files (the wasm, its glue, the
// chart bundle, the style sheets), which the relay serves as they are to browsers that accept them
// (`ServeDir::precompressed_gzip` and `precompressed_br`); nginx's `gzip_static`/`brotli_static` and Caddy's
// `precompressed` do the same for a page hosted elsewhere.
//
// Compressing once at build time can afford the slow, thorough encoders a server cannot run per request: zopfli
// writes ordinary gzip that any browser reads, about 4 % smaller than `gzip -9`, and brotli at its highest
// quality is smaller again. index.html, config.json and sw.js get no copies: a deployment may edit them after the
// build, and a stale copy would then be served instead of the edit.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const staging = process.env.TRUNK_STAGING_DIR;
if (!staging) {
    console.error('precompress: TRUNK_STAGING_DIR is not set (trunk runs this as a post_build hook)');
    process.exit(1);
}
const zopfli = createRequire(import.meta.url)('@gfx/zopfli');

const immutable = /^(hamster-web-[0-9a-f]+(_bg\.wasm|\.js)|lightweight-charts\.js|[a-z]+-[0-9a-f]+\.css)$/;
const sizes = { raw: 0, gzip: 0, br: 0 };
for (const name of readdirSync(staging).filter((f) => immutable.test(f))) {
    const path = join(staging, name);
    const bytes = readFileSync(path);
    // 15 iterations is zopfli's default; more gain a few bytes for many seconds.
    const gzip = await zopfli.gzipAsync(bytes, { numiterations: 15 });
    const br = brotliCompressSync(bytes, {
        params: {
            [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
            [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        },
    });
    writeFileSync(`${path}.gz`, gzip);
    writeFileSync(`${path}.br`, br);
    sizes.raw += bytes.length;
    sizes.gzip += gzip.length;
    sizes.br += br.length;
}
console.log(`precompress: ${sizes.raw} bytes -> ${sizes.gzip} gzip (zopfli), ${sizes.br} brotli`);
