"""Documents that try to fetch from ``base`` (a trap server) when they are opened or drawn:
a DOCX with a linked (not embedded) picture, an ODT with a linked picture, an XLSX whose cell
asks for a web service."""

from __future__ import annotations

import io
import zipfile

from tests.support.documents import make_docx, make_xlsx

_DOCX_PICTURE = (
    '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:r><w:drawing>'
    '<wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
    '<wp:extent cx="914400" cy="914400"/><wp:docPr id="99" name="remote"/>'
    '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
    '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
    '<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
    '<pic:nvPicPr><pic:cNvPr id="99" name="remote"/><pic:cNvPicPr/></pic:nvPicPr>'
    '<pic:blipFill><a:blip xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships" r:link="rIdTrap"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
    '<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="914400" cy="914400"/></a:xfrm>'
    '<a:prstGeom prst="rect"/></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline>'
    "</w:drawing></w:r></w:p>"
)


def _rewrite(data: bytes, changes: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            target.writestr(name, changes.pop(name, source.read(name)))
        for name, content in changes.items():
            target.writestr(name, content)
    return out.getvalue()


def docx_with_remote_picture(base: str) -> bytes:
    data = make_docx("원격 그림 REMOTE PICTURE")
    source = zipfile.ZipFile(io.BytesIO(data))
    body = source.read("word/document.xml").decode()
    body = body.replace("<w:sectPr", _DOCX_PICTURE + "<w:sectPr", 1)
    rels = source.read("word/_rels/document.xml.rels").decode()
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdTrap" Type="http://schemas.openxmlformats.org/officeDocument/'
        f'2006/relationships/image" Target="{base}/docx-picture.png" TargetMode="External"/>'
        "</Relationships>",
    )
    return _rewrite(
        data, {"word/document.xml": body.encode(), "word/_rels/document.xml.rels": rels.encode()}
    )


def odt_with_remote_picture(base: str) -> bytes:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
        ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.3">'
        "<office:body><office:text><text:p>원격 그림 REMOTE PICTURE"
        '<draw:frame draw:name="remote" svg:width="3cm" svg:height="3cm"><draw:image'
        f' xlink:href="{base}/odt-picture.png" xlink:type="simple" xlink:show="embed"'
        ' xlink:actuate="onLoad"/></draw:frame></text:p></office:text></office:body>'
        "</office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.3"><manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", manifest)
    return out.getvalue()


def xlsx_with_web_service(base: str) -> bytes:
    return make_xlsx([["원격 자료 REMOTE DATA"], [f'=WEBSERVICE("{base}/xlsx-webservice")']])


FETCHING = {
    "remote.docx": docx_with_remote_picture,
    "remote.odt": odt_with_remote_picture,
    "remote.xlsx": xlsx_with_web_service,
}
