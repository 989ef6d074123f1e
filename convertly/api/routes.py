"""The route table."""

from __future__ import annotations

from starlette.routing import Mount, Route

from convertly.api import (
    apidocs,
    dashboard,
    endpoints,
    health,
    library,
    observe,
    playback,
    stream_tracks,
    streams,
    tools,
    webhook_endpoints,
)
from convertly.api.openapi import openapi

ROUTES = [
    Route("/", dashboard.index, methods=["GET"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/livez", health.livez, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", observe.metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", apidocs.page, methods=["GET"]),
    Mount(apidocs.ASSETS_PREFIX, app=apidocs.FILES, name="apidocs"),
    Route("/api/formats", endpoints.formats, methods=["GET"]),
    Route("/api/convert", endpoints.convert, methods=["POST"]),
    Route("/api/compress", endpoints.compress, methods=["POST"]),
    Route("/api/jobs", endpoints.create_job, methods=["POST"]),
    Route("/api/jobs", endpoints.list_jobs, methods=["GET"]),
    Route("/api/jobs/{job_id}", endpoints.get_job, methods=["GET"]),
    Route("/api/jobs/{job_id}", endpoints.cancel_job, methods=["DELETE"]),
    Route("/api/download/{token}", endpoints.download, methods=["GET", "HEAD"]),
    # The media tools (convertly/api/tools.py): every tool of the tool registry.
    Route("/api/media/{tool}", tools.media_tool, methods=["POST"]),
    Route("/api/files/{file_id}/tools", tools.stored_file_tool, methods=["POST"]),
    # The storage API (convertly/api/library.py). /api/files/search and /api/files/zip come
    # before /api/files/{file_id}, which would otherwise take them.
    Route("/api/files", library.list_files, methods=["GET"]),
    Route("/api/files", library.upload_files, methods=["POST"]),
    Route("/api/files/search", library.search_files, methods=["GET"]),
    Route("/api/files/zip", library.zip_files, methods=["POST"]),
    Route("/api/files/{file_id}", library.get_file, methods=["GET"]),
    Route("/api/files/{file_id}", library.update_file, methods=["PATCH"]),
    Route("/api/files/{file_id}", library.delete_file, methods=["DELETE"]),
    Route("/api/folders", library.list_folders, methods=["GET"]),
    Route("/api/folders", library.create_folder, methods=["POST"]),
    Route("/api/folders/{folder_id}", library.update_folder, methods=["PATCH"]),
    Route("/api/folders/{folder_id}", library.delete_folder, methods=["DELETE"]),
    Route("/api/uploads", library.create_upload, methods=["POST"]),
    Route("/api/uploads/complete", library.complete_upload, methods=["POST"]),
    Route("/api/uploads/{token}", library.put_upload, methods=["PUT"]),
    # The dashboard's static files (convertly/dashboard/), under a version that changes with them.
    Mount(dashboard.ASSETS_PREFIX, app=dashboard.FILES, name="dashboard"),
    Route("/api/webhooks", webhook_endpoints.create_webhook, methods=["POST"]),
    Route("/api/webhooks", webhook_endpoints.list_webhooks, methods=["GET"]),
    Route("/api/webhooks/deliveries", webhook_endpoints.list_deliveries, methods=["GET"]),
    Route("/api/webhooks/deliveries/{delivery_id}/retry", webhook_endpoints.retry_delivery,
          methods=["POST"]),
    Route("/api/webhooks/{webhook_id}", webhook_endpoints.delete_webhook, methods=["DELETE"]),
    # Video streams (convertly/api/streams.py).
    Route("/api/video/streams", streams.create_stream, methods=["POST"]),
    Route("/api/video/streams", streams.list_streams, methods=["GET"]),
    Route("/api/video/streams/{stream_id}", streams.get_stream, methods=["GET"]),
    Route("/api/video/streams/{stream_id}", streams.update_stream, methods=["PATCH"]),
    Route("/api/video/streams/{stream_id}", streams.delete_stream, methods=["DELETE"]),
    # A stream's captions, chapters, poster and thumbnails (convertly/api/stream_tracks.py).
    Route("/api/video/streams/{stream_id}/captions", stream_tracks.add_caption,
          methods=["POST"]),
    Route("/api/video/streams/{stream_id}/captions", stream_tracks.remove_caption,
          methods=["DELETE"]),
    Route("/api/video/streams/{stream_id}/chapters", stream_tracks.replace_chapters,
          methods=["PUT"]),
    Route("/api/video/streams/{stream_id}/chapters", stream_tracks.remove_chapter,
          methods=["DELETE"]),
    Route("/api/video/streams/{stream_id}/poster", stream_tracks.set_poster,
          methods=["POST"]),
    Route("/api/video/streams/{stream_id}/thumbnails", stream_tracks.list_thumbnails,
          methods=["GET"]),
    # Video streams' playback (convertly/api/playback.py): players call these with no key.
    Route("/video/v1/{playback_id}/{name}", playback.play, methods=["GET", "HEAD"]),
    Route("/video/v1/{playback_id}/{name}", playback.play_options, methods=["OPTIONS"]),
    Route("/video/v1/{playback_id}/{folder}/{name}", playback.play, methods=["GET", "HEAD"]),
    Route("/video/v1/{playback_id}/{folder}/{name}", playback.play_options,
          methods=["OPTIONS"]),
    Route("/api/video/playback-events", playback.playback_event, methods=["POST"]),
    Route("/api/video/playback-events", playback.playback_event_options,
          methods=["OPTIONS"]),
]
