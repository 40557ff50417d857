// Test harness only: Amazon S3's REST API (path-style) over an R2 binding,
// so that pdslog's mirror, which writes R2 through its S3 API with the
// aws-sdk-go-v2 client (eventlog/blobstore/s3), writes into Miniflare's
// real R2 storage, where the Worker reads through its binding. Miniflare
// has no S3 API of its own.
//
// It speaks exactly the operations that client sends: HeadBucket,
// HeadObject, GetObject (with Range), PutObject (plain or aws-chunked
// bodies), DeleteObject, ListObjectsV2, and multipart uploads
// (CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload), with S3's status codes, headers and XML. Requests
// must be SigV4-signed with the configured access key id (the signature
// itself is not checked).

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'

function xml(status, body, headers = {}) {
  return new Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, {
    status,
    headers: { 'content-type': 'application/xml', ...headers },
  })
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c])
}

function unescapeXML(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|quot|apos|lt|gt|amp);/g, (_, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
    return { quot: '"', apos: "'", lt: '<', gt: '>', amp: '&' }[e]
  })
}

function error(method, status, code, message, extra = '') {
  if (method === 'HEAD') return new Response(null, { status })
  return xml(status, `<Error><Code>${code}</Code><Message>${esc(message)}</Message>${extra}<RequestId>harness</RequestId></Error>`)
}

function objectHeaders(obj) {
  return {
    'content-type': obj.httpMetadata?.contentType || 'application/octet-stream',
    etag: obj.httpEtag,
    'last-modified': obj.uploaded.toUTCString(),
    'accept-ranges': 'bytes',
  }
}

// Decodes an aws-chunked body: "<hex size>[;chunk-signature=…]\r\n<data>\r\n"
// chunks, ending with a zero-size chunk and optional trailers.
function unchunk(b) {
  const out = []
  let off = 0
  const dec = new TextDecoder()
  for (;;) {
    const eol = b.indexOf(13, off)
    if (eol < 0 || b[eol + 1] !== 10) throw new Error('aws-chunked: bad chunk header')
    const line = dec.decode(b.subarray(off, eol))
    const size = parseInt(line.split(';')[0], 16)
    if (!Number.isFinite(size)) throw new Error('aws-chunked: bad chunk size')
    off = eol + 2
    if (size === 0) break
    out.push(b.subarray(off, off + size))
    off += size + 2
  }
  const n = out.reduce((a, c) => a + c.length, 0)
  const all = new Uint8Array(n)
  let p = 0
  for (const c of out) {
    all.set(c, p)
    p += c.length
  }
  return all
}

async function body(request) {
  const b = new Uint8Array(await request.arrayBuffer())
  const sha = request.headers.get('x-amz-content-sha256') || ''
  if (sha.startsWith('STREAMING-') || /aws-chunked/.test(request.headers.get('content-encoding') || '')) return unchunk(b)
  return b
}

function parseRange(h, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Math.min(Number(m[2]), size)
    return { offset: size - n, length: n }
  }
  const a = Number(m[1])
  if (a >= size) return 'invalid'
  const b = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  return { offset: a, length: b - a + 1 }
}

export async function s3(request, env) {
  try {
    return await serve(request, env)
  } catch (e) {
    console.error('s3 harness:', request.method, request.url, String(e))
    return error(request.method, 500, 'InternalError', String(e))
  }
}

async function serve(request, env) {
  const { method } = request
  const auth = request.headers.get('authorization') || ''
  const cred = /^AWS4-HMAC-SHA256 Credential=([^/,]+)\//.exec(auth)
  if (!cred || (env.S3_ACCESS_KEY && cred[1] !== env.S3_ACCESS_KEY)) {
    return error(method, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
  }
  const url = new URL(request.url)
  const path = url.pathname.slice(1)
  const slash = path.indexOf('/')
  const bucket = decodeURIComponent(slash < 0 ? path : path.slice(0, slash))
  const key = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1))
  if (bucket !== env.S3_BUCKET) return error(method, 404, 'NoSuchBucket', 'The specified bucket does not exist', `<BucketName>${esc(bucket)}</BucketName>`)
  const q = url.searchParams
  const r2 = env.BUCKET

  if (key === '') {
    if (method === 'HEAD') return new Response(null, { status: 200 })
    if (method === 'GET' && q.get('list-type') === '2') {
      const max = q.has('max-keys') ? Number(q.get('max-keys')) : 1000
      const opts = { limit: Math.max(1, Math.min(max, 1000)), prefix: q.get('prefix') || undefined }
      if (q.get('continuation-token')) opts.cursor = q.get('continuation-token')
      else if (q.get('start-after')) opts.startAfter = q.get('start-after')
      const page = await r2.list(opts)
      let out = `<ListBucketResult xmlns="${XMLNS}"><Name>${esc(bucket)}</Name><Prefix>${esc(q.get('prefix') || '')}</Prefix>`
      out += `<KeyCount>${page.objects.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${page.truncated}</IsTruncated>`
      if (q.get('continuation-token')) out += `<ContinuationToken>${esc(q.get('continuation-token'))}</ContinuationToken>`
      if (q.get('start-after')) out += `<StartAfter>${esc(q.get('start-after'))}</StartAfter>`
      if (page.truncated) out += `<NextContinuationToken>${esc(page.cursor)}</NextContinuationToken>`
      for (const o of page.objects) {
        out += `<Contents><Key>${esc(o.key)}</Key><LastModified>${o.uploaded.toISOString()}</LastModified><ETag>${esc(o.httpEtag)}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`
      }
      return xml(200, out + '</ListBucketResult>')
    }
    return error(method, 501, 'NotImplemented', 'A header or query you provided implies functionality that is not implemented.')
  }

  switch (method) {
    case 'HEAD': {
      const obj = await r2.head(key)
      if (!obj) return new Response(null, { status: 404 })
      return new Response(null, { status: 200, headers: { ...objectHeaders(obj), 'content-length': String(obj.size) } })
    }
    case 'GET': {
      const h = request.headers.get('range')
      let range
      if (h) {
        const head = await r2.head(key)
        if (!head) return error(method, 404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${esc(key)}</Key>`)
        range = parseRange(h, head.size)
        if (range === 'invalid') {
          return error(method, 416, 'InvalidRange', 'The requested range is not satisfiable', `<ActualObjectSize>${head.size}</ActualObjectSize>`)
        }
      }
      const obj = await r2.get(key, range ? { range } : undefined)
      if (!obj) return error(method, 404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${esc(key)}</Key>`)
      const headers = objectHeaders(obj)
      if (range) {
        headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${obj.size}`
        headers['content-length'] = String(range.length)
        return new Response(obj.body, { status: 206, headers })
      }
      headers['content-length'] = String(obj.size)
      return new Response(obj.body, { status: 200, headers })
    }
    case 'PUT': {
      const data = await body(request)
      if (q.has('uploadId')) {
        const up = r2.resumeMultipartUpload(key, q.get('uploadId'))
        const part = await up.uploadPart(Number(q.get('partNumber')), data)
        return new Response(null, { status: 200, headers: { etag: `"${part.etag}"` } })
      }
      const obj = await r2.put(key, data, {
        httpMetadata: request.headers.get('content-type') ? { contentType: request.headers.get('content-type') } : undefined,
      })
      return new Response(null, { status: 200, headers: { etag: obj.httpEtag } })
    }
    case 'POST': {
      if (q.has('uploads')) {
        const up = await r2.createMultipartUpload(key)
        return xml(
          200,
          `<InitiateMultipartUploadResult xmlns="${XMLNS}"><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${esc(up.uploadId)}</UploadId></InitiateMultipartUploadResult>`,
        )
      }
      if (q.has('uploadId')) {
        const text = await request.text()
        const parts = []
        for (const m of text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
          const etag = unescapeXML(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1])?.[1] ?? '').replace(/^"|"$/g, '')
          const n = Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1])?.[1])
          parts.push({ partNumber: n, etag })
        }
        const up = r2.resumeMultipartUpload(key, q.get('uploadId'))
        const obj = await up.complete(parts)
        return xml(
          200,
          `<CompleteMultipartUploadResult xmlns="${XMLNS}"><Location>${esc(url.origin + '/' + path)}</Location><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><ETag>${esc(obj.httpEtag)}</ETag></CompleteMultipartUploadResult>`,
        )
      }
      break
    }
    case 'DELETE': {
      if (q.has('uploadId')) {
        await r2.resumeMultipartUpload(key, q.get('uploadId')).abort()
        return new Response(null, { status: 204 })
      }
      await r2.delete(key)
      return new Response(null, { status: 204 })
    }
  }
  return error(method, 501, 'NotImplemented', 'A header or query you provided implies functionality that is not implemented.')
}
