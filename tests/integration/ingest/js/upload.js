// Upload one file with tus-js-client (Node): node upload.js '<json options>'
// options: endpoint, file, token, metadata, chunkSize, uploadDataDuringCreation, uploadLengthDeferred,
//          parallelUploads, uploadUrl (resume), stopAfterBytes (abort once that many bytes were acknowledged)
const fs = require("fs");
const tus = require("tus-js-client");

const opts = JSON.parse(process.argv[2]);
const size = fs.statSync(opts.file).size;
// Deferred length is for sources whose size is unknown; a Node read stream never reports its end to
// tus-js-client 4.3.1 in that mode (its last PATCH hangs), so the deferred case reads the file into a Buffer.
const source = opts.uploadLengthDeferred ? fs.readFileSync(opts.file) : fs.createReadStream(opts.file);
const upload = new tus.Upload(source, {
  endpoint: opts.endpoint,
  uploadUrl: opts.uploadUrl || null,
  headers: { Authorization: `Bearer ${opts.token}` },
  metadata: opts.metadata || {},
  uploadSize: opts.uploadLengthDeferred || opts.parallelUploads > 1 ? undefined : size,
  chunkSize: opts.chunkSize || Infinity,
  uploadDataDuringCreation: !!opts.uploadDataDuringCreation,
  uploadLengthDeferred: !!opts.uploadLengthDeferred,
  parallelUploads: opts.parallelUploads || 1,
  retryDelays: [0, 300, 1000, 2000],
  removeFingerprintOnSuccess: true,
  onProgress(sent) {
    if (opts.stopAfterBytes && sent >= opts.stopAfterBytes) {
      upload.abort(false).then(() => {
        console.log(JSON.stringify({ aborted: true, url: upload.url }));
        process.exit(0);
      });
    }
  },
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url }));
  },
});
upload.start();
