"""Video streams: a stored video encoded into an adaptive ladder and packaged for HLS and
DASH from one set of fMP4 (CMAF) segments, with captions, chapters and a poster.

    model.py    the stream record and its parts (renditions, captions, chapters, clip),
                the profiles' ladders; plain data, JSON across processes
    store.py    the StreamStore Protocol (implemented by `convertly.state.sqlite.streams`
                and `convertly.state.redis.streams`)
    layout.py   where a stream's objects live in storage, and the relative paths the
                playback route serves them under
    manifests.py  text tracks written into the packaged manifests, WebVTT checked,
                chapters written, signed manifests' URIs
    access.py   playback tokens, allowed domains, CORS and the playback files' types
    frames.py   posters and thumbnail candidates grabbed with ffmpeg
    playback.py the playback route's checks (access, paths), byte ranges, the manifests a
                signed stream's players get
    analytics.py  playback counts: the rule (views, watch time) and the PlaybackStore
                Protocol (`convertly.state.sqlite.playback`, `...redis.playback`)
    ladder.py   the renditions a profile (or a custom ladder) gives a source
    encode.py   the ffmpeg commands: a rendition to fragmented MP4, then the packaging

Nothing in this package imports `convertly.state`, `convertly.service` or the modules
above them: the state engines import `model` and `store`, so any such import would be a
cycle. What joins a stream to the state and the services (create, delete, the encoding
tasks) is `convertly.videostreams`; its captions, chapters, poster and thumbnails after
creation, `convertly.streamtracks`.
"""
