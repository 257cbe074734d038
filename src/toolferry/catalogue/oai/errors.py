"""The OAI-PMH error conditions (protocol section 3.6)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode", "OaiError", "Refusal"]


class ErrorCode(StrEnum):
    BAD_ARGUMENT = "badArgument"  # illegal, missing, repeated or malformed argument
    BAD_RESUMPTION_TOKEN = "badResumptionToken"  # invalid, tampered with or expired
    BAD_VERB = "badVerb"  # missing, repeated or unknown verb
    CANNOT_DISSEMINATE_FORMAT = "cannotDisseminateFormat"
    ID_DOES_NOT_EXIST = "idDoesNotExist"
    NO_RECORDS_MATCH = "noRecordsMatch"
    NO_METADATA_FORMATS = "noMetadataFormats"  # a deleted record has no metadata in any format
    NO_SET_HIERARCHY = "noSetHierarchy"  # never raised: this repository has sets


class OaiError(Exception):
    """One error condition; ``argument`` names the request argument it is about, which the
    response's ``request`` element then does not echo."""

    def __init__(self, code: ErrorCode, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.argument = argument


class Refusal(Exception):
    """Several error conditions answered together (e.g. an unknown identifier and an
    unknown metadataPrefix)."""

    def __init__(self, errors: list[OaiError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
