"""Responses that behave under both servers."""

from asgiref.sync import sync_to_async
from django.http import FileResponse

ASYNC_BLOCK_BYTES = 1024 * 1024


class FileStream(FileResponse):
    """A FileResponse an ASGI server sends a block at a time.

    Under ASGI Django serves a sync streaming response by reading it into a list
    first (HttpResponseBase.__aiter__), so a 200 MB X-ray would sit in the worker's
    memory whole. Here each block is read in the request's thread and sent before the
    next is read. Under WSGI it is Django's FileResponse.
    """

    async def __aiter__(self):
        read = sync_to_async(self.file_to_stream.read)
        while block := await read(ASYNC_BLOCK_BYTES):
            yield block
