"""OAI-PMH 2.0 over the catalogue: records, sets, metadata formats, resumption tokens, verbs.

One record per environment version that anonymous users may read (others ``r-``), identified
``oai:<repository id>:<name>:<version>``; its datestamp is the version's ``updated`` time.
Tombstones stay as deleted records (``deletedRecord`` persistent). Everything here is pure:
:func:`~toolferry.catalogue.oai.protocol.respond` turns the request's arguments and the
records into the response document; ``toolferry.api.oai`` is the HTTP edge.

- ``xmltree``: namespaces and safe serialisation
- ``dates``: datestamps and the ``from``/``until`` arguments
- ``sets``: ``community:<slug>`` and ``kind:<kind>``
- ``records``: environments as records, identifiers, harvest order
- ``oai_dc``, ``native``, ``native_schema``, ``formats``: the metadata formats
- ``tokens``: stateless, checked resumption tokens
- ``repository``: what Identify says, the base URL, the page size
- ``arguments``, ``errors``, ``protocol``: the six verbs and the error conditions
"""

from toolferry.catalogue.oai.errors import ErrorCode, OaiError
from toolferry.catalogue.oai.protocol import respond
from toolferry.catalogue.oai.records import Record, record_of
from toolferry.catalogue.oai.repository import Repository

__all__ = ["ErrorCode", "OaiError", "Record", "Repository", "record_of", "respond"]
