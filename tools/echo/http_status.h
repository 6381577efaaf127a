/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ECHO_HTTP_STATUS_H
#define ECHO_HTTP_STATUS_H

/* Go's http.StatusText(code), or NULL for codes it does not know. */
const char *http_status_text(int code);

#endif
