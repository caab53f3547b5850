"""Documents that try to fetch from ``base`` (a trap server) when they are opened or drawn:
a DOCX with a linked (not embedded) picture, an ODT with a linked picture, an XLSX whose cell
asks for a web service; linked OLE objects (DOCX, ODT), an ODT section linked to a remote
file, an XLSX with an external workbook link and one with a web-query data connection that
asks to be refreshed on load."""

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


_OOXML_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_DOCX_OLE_LINK = (
    '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:r>'
    '<w:object xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:'
    f'office" xmlns:r="{_OOXML_RELATIONSHIPS}" w:dxaOrig="2000" w:dyaOrig="1000">'
    '<v:shape id="ole1" style="width:100pt;height:50pt"/>'
    '<o:OLEObject Type="Link" ProgID="Excel.Sheet.12" ShapeID="ole1" DrawAspect="Content"'
    ' ObjectID="_1" r:id="rIdOle" UpdateMode="Always"><o:LinkType>EnhancedMetafile'
    "</o:LinkType><o:LockedField>false</o:LockedField></o:OLEObject></w:object></w:r></w:p>"
)


def _relationship(rel_id: str, kind: str, target: str) -> str:
    return (
        f'<Relationship Id="{rel_id}" Type="{_OOXML_RELATIONSHIPS}/{kind}" Target="{target}"'
        ' TargetMode="External"/>'
    )


def docx_with_linked_ole_object(base: str) -> bytes:
    data = make_docx("연결된 OLE 개체 LINKED OLE")
    source = zipfile.ZipFile(io.BytesIO(data))
    body = source.read("word/document.xml").decode()
    body = body.replace("<w:sectPr", _DOCX_OLE_LINK + "<w:sectPr", 1)
    rels = source.read("word/_rels/document.xml.rels").decode()
    link = _relationship("rIdOle", "oleObject", f"{base}/docx-ole.xlsx")
    rels = rels.replace("</Relationships>", link + "</Relationships>")
    return _rewrite(
        data, {"word/document.xml": body.encode(), "word/_rels/document.xml.rels": rels.encode()}
    )


def _odt(body: str) -> bytes:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
        ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.3">'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    )
    data = odt_with_remote_picture("http://unused.invalid")
    return _rewrite(data, {"content.xml": content.encode()})


def odt_with_linked_ole_object_and_section(base: str) -> bytes:
    return _odt(
        "<text:p>연결된 개체 LINKED OBJECT"
        '<draw:frame draw:name="ole" svg:width="4cm" svg:height="2cm"><draw:object'
        f' xlink:href="{base}/odt-object.ods" xlink:type="simple" xlink:show="embed"'
        ' xlink:actuate="onLoad"/></draw:frame></text:p>'
        '<text:section text:name="linked"><text:section-source'
        f' xlink:href="{base}/odt-section.odt" xlink:type="simple"/><text:p>cached</text:p>'
        "</text:section>"
    )


def xlsx_with_external_link(base: str) -> bytes:
    data = make_xlsx([["외부 통합 문서 EXTERNAL LINK"], ["=[1]Sheet1!A1"]])
    source = zipfile.ZipFile(io.BytesIO(data))
    workbook = source.read("xl/workbook.xml").decode()
    workbook = workbook.replace(
        "</sheets>",
        f'</sheets><externalReferences><externalReference xmlns:r="{_OOXML_RELATIONSHIPS}"'
        ' r:id="rIdExt"/></externalReferences>',
    )
    rels = source.read("xl/_rels/workbook.xml.rels").decode()
    rels = rels.replace(
        "</Relationships>",
        f'<Relationship Id="rIdExt" Type="{_OOXML_RELATIONSHIPS}/externalLink"'
        ' Target="externalLinks/externalLink1.xml"/></Relationships>',
    )
    types = source.read("[Content_Types].xml").decode()
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>',
    )
    link = (
        '<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        f' xmlns:r="{_OOXML_RELATIONSHIPS}"><externalBook r:id="rId1"><sheetNames>'
        '<sheetName val="Sheet1"/></sheetNames><sheetDataSet><sheetData sheetId="0">'
        '<row r="1"><cell r="A1" t="str"><v>cached</v></cell></row></sheetData>'
        "</sheetDataSet></externalBook></externalLink>"
    )
    link_rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + _relationship("rId1", "externalLinkPath", f"{base}/xlsx-external.xlsx")
        + "</Relationships>"
    )
    return _rewrite(data, {
        "xl/workbook.xml": workbook.encode(), "xl/_rels/workbook.xml.rels": rels.encode(),
        "[Content_Types].xml": types.encode(), "xl/externalLinks/externalLink1.xml": link.encode(),
        "xl/externalLinks/_rels/externalLink1.xml.rels": link_rels.encode(),
    })  # fmt: skip


def xlsx_with_web_query(base: str) -> bytes:
    data = make_xlsx([["외부 데이터 EXTERNAL DATA"]])
    source = zipfile.ZipFile(io.BytesIO(data))
    rels = source.read("xl/_rels/workbook.xml.rels").decode()
    rels = rels.replace(
        "</Relationships>",
        f'<Relationship Id="rIdConn" Type="{_OOXML_RELATIONSHIPS}/connections"'
        ' Target="connections.xml"/></Relationships>',
    )
    types = source.read("[Content_Types].xml").decode()
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/connections.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.connections+xml"/></Types>',
    )
    connections = (
        '<connections xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<connection id="1" name="trap" type="4" refreshedVersion="6" refreshOnLoad="1"'
        f' background="0" saveData="1"><webPr url="{base}/xlsx-webquery" htmlTables="1"/>'
        "</connection></connections>"
    )
    return _rewrite(data, {
        "xl/_rels/workbook.xml.rels": rels.encode(), "[Content_Types].xml": types.encode(),
        "xl/connections.xml": connections.encode(),
    })  # fmt: skip


FETCHING = {
    "remote.docx": docx_with_remote_picture,
    "remote.odt": odt_with_remote_picture,
    "remote.xlsx": xlsx_with_web_service,
    "linked-ole.docx": docx_with_linked_ole_object,
    "linked-ole.odt": odt_with_linked_ole_object_and_section,
    "external-link.xlsx": xlsx_with_external_link,
    "web-query.xlsx": xlsx_with_web_query,
}


_BASIC_LIBRARIES = (
    '<?xml version="1.0" encoding="UTF-8"?><library:libraries'
    ' xmlns:library="http://openoffice.org/2000/library" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<library:library library:name="Standard" xlink:href="Basic/Standard/script-lb.xml/"'
    ' xlink:type="simple" library:link="false"/></library:libraries>'
)
_BASIC_LIBRARY = (
    '<?xml version="1.0" encoding="UTF-8"?><library:library'
    ' xmlns:library="http://openoffice.org/2000/library" library:name="Standard"'
    ' library:readonly="false" library:passwordprotected="false">'
    '<library:element library:name="Module1"/></library:library>'
)


_MACRO_PARTS = (
    "content.xml",
    "Basic/script-lc.xml",
    "Basic/Standard/script-lb.xml",
    "Basic/Standard/Module1.xml",
)


def odt_with_macro_on_open(base: str, marker: str) -> bytes:
    """An ODT whose Basic macro, bound to the document's load event, fetches ``base``/macro
    and writes the file ``marker``: what a macro would do if LibreOffice ran it."""
    code = (
        "Sub Trap\n"
        f'  CreateUnoService("com.sun.star.ucb.SimpleFileAccess").openFileRead("{base}/macro")\n'
        f'  Open "{marker}" For Output As #1\n  Print #1, "macro ran"\n  Close #1\nEnd Sub\n'
    )
    module = (
        '<?xml version="1.0" encoding="UTF-8"?><script:module'
        ' xmlns:script="http://openoffice.org/2000/script" script:name="Module1"'
        f' script:language="StarBasic">{_xml_text(code)}</script:module>'
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0"'
        ' xmlns:ooo="http://openoffice.org/2004/office"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.3">'
        "<office:scripts><office:event-listeners><script:event-listener"
        ' script:language="ooo:script" script:event-name="dom:load" xlink:type="simple"'
        ' xlink:href="vnd.sun.star.script:Standard.Module1.Trap?language=Basic&amp;'
        'location=document"/></office:event-listeners></office:scripts>'
        "<office:body><office:text><text:p>매크로 문서 MACRO TRAP</text:p></office:text>"
        "</office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.3"><manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        + "".join(
            f'<manifest:file-entry manifest:full-path="{path}" manifest:media-type="text/xml"/>'
            for path in _MACRO_PARTS
        )
        + "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", content)
        archive.writestr("Basic/script-lc.xml", _BASIC_LIBRARIES)
        archive.writestr("Basic/Standard/script-lb.xml", _BASIC_LIBRARY)
        archive.writestr("Basic/Standard/Module1.xml", module)
        archive.writestr("META-INF/manifest.xml", manifest)
    return out.getvalue()


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
