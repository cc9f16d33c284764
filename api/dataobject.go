package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// dataObjectAttributes are the attributes of a data object on the wire
// (DataObjectDto.attributes); nil means "not given".
type dataObjectAttributes struct {
	Private     *bool `json:"private"`
	Modifiable  *bool `json:"modifiable"`
	Destroyable *bool `json:"destroyable"`
}

// dataObjectRequest is the body of POST /v1/dataObject.
type dataObjectRequest struct {
	Name       *string               `json:"name"`
	Value      *string               `json:"value"`
	Attributes *dataObjectAttributes `json:"attributes"`
	Customer   string                `json:"customer"`
}

// dataObjectResponse is a data object on the wire; Value is omitted in the
// answer to a creation, which echoes no secret.
type dataObjectResponse struct {
	Name       string              `json:"name"`
	Value      string              `json:"value,omitempty"`
	Attributes dataObjectFlagsJSON `json:"attributes"`
	Customer   string              `json:"customer"`
}

// dataObjectFlagsJSON are the attributes of a data object in a response.
type dataObjectFlagsJSON struct {
	Private     bool `json:"private"`
	Modifiable  bool `json:"modifiable"`
	Destroyable bool `json:"destroyable"`
}

// dataObjectJSON renders a data object, with its value when withValue.
func dataObjectJSON(o *keys.DataObject, withValue bool) dataObjectResponse {
	out := dataObjectResponse{Name: o.Name, Customer: o.Customer,
		Attributes: dataObjectFlagsJSON{Private: o.Private, Modifiable: o.Modifiable, Destroyable: o.Destroyable}}
	if withValue {
		out.Value = b64(o.Value)
	}
	return out
}

// errDataObjectValue is 616 data.object.invalid.value.
func errDataObjectValue(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 616, "data.object.invalid.value", format, args...)
}

// createDataObject handles POST /v1/dataObject. Attributes default as a
// key's do: private, modifiable and destroyable.
func (s *server) createDataObject(c *gin.Context) error {
	var req dataObjectRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("name", req.Name); err != nil {
		return err
	}
	if req.Value == nil {
		return errDataObjectValue("value is required")
	}
	value, err := decodeBase64(*req.Value)
	if err != nil {
		return errDataObjectValue("value is not valid base64")
	}
	a := req.Attributes
	if a == nil {
		a = &dataObjectAttributes{}
	}
	o, err := s.keys.CreateDataObject(c.Request.Context(), principal(c), keys.CreateDataObjectRequest{Name: *req.Name, Value: value,
		Private: flag(a.Private, true), Modifiable: flag(a.Modifiable, true), Destroyable: flag(a.Destroyable, true), Customer: req.Customer})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, dataObjectJSON(o, false))
	return nil
}

// listDataObjects handles GET /v1/dataObject: the names of the caller's
// customers' data objects.
func (s *server) listDataObjects(c *gin.Context) error {
	names, err := s.keys.ListDataObjects(c.Request.Context(), principal(c))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, names)
	return nil
}

// getDataObject handles GET /v1/dataObject/{name}.
func (s *server) getDataObject(c *gin.Context) error {
	name := c.Param("name")
	if err := checkLabel("name", name); err != nil {
		return err
	}
	o, err := s.keys.DataObject(c.Request.Context(), principal(c), name)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, dataObjectJSON(o, true))
	return nil
}

// deleteDataObject handles DELETE /v1/dataObject/{name}.
func (s *server) deleteDataObject(c *gin.Context) error {
	name := c.Param("name")
	if err := checkLabel("name", name); err != nil {
		return err
	}
	if err := s.keys.DeleteDataObject(c.Request.Context(), principal(c), name); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}
